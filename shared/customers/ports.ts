// Moved to shared/core/customer-record.ts. This re-export keeps shared/aws/registration-table.ts
// (being edited elsewhere) compiling; delete it once that file imports from core.
export type * from '../core/customer-record';
