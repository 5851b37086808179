import en from 'zod/v4/locales/en.js';
import { config } from 'zod/mini';

/*
 * The one zod every schema keyplan bundles is written in: zod/mini, whose functions tree-shake
 * (the classic chainable API carries every method of every schema type into each bundle: about
 * 70 KB of the 97 KB zod added). zod/mini loads no messages of its own, so every issue would read
 * "Invalid input"; the English locale keeps the messages that name what is wrong with the input
 * ("Too big: expected string to have <=64 characters") exactly as the classic API wrote them.
 */
config(en());

export * from 'zod/mini';
