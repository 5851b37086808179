// Moved to shared/core/registration.ts. This re-export keeps shared/aws/registration-table.ts
// (being edited elsewhere) compiling; delete it once that file imports from core.
export * from '../core/registration';
