/**
 * How dangerous a step or command is (docs/architecture.md): `read` never asks, `change` asks, `high`
 * asks and names the impact, `irreversible` makes the operator type the resource name.
 */
export type Risk = 'read' | 'change' | 'high' | 'irreversible';

export const RISKS: readonly Risk[] = ['read', 'change', 'high', 'irreversible'];
