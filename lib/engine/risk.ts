/**
 * How dangerous a step or command is (DESIGN.md §3): `read` never asks, `change` asks, `high`
 * asks and names the impact, `irreversible` makes the operator type the resource name.
 */
export type Risk = 'read' | 'change' | 'high' | 'irreversible';

export const RISKS: readonly Risk[] = ['read', 'change', 'high', 'irreversible'];
