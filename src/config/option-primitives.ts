import { z } from 'zod';

/** Building blocks shared by the option schemas. */
export const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().nonnegative();

export const rateSchema = z
  .object({
    /** Tokens added per second. */
    perSecond: z.number().positive(),
    /** Bucket size: how many may be spent at once. */
    burst: positiveInt,
  })
  .strict();
