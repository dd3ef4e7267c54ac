/**
 * Byte equality whose time depends on the lengths only, never on where the bytes differ: for
 * comparing secrets, digests and signatures (`cronHandler`, `verifyWebhook`).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
