import type { Prompter } from '../../lib/engine/confirm.ts';

/** Every question a test does not expect fails it; spread first, then the answers it expects. */
export const unasked: Prompter = {
  yesNo: async (message) => {
    throw new Error(`unexpected yes/no question: ${message}`);
  },
  typeName: async (message) => {
    throw new Error(`unexpected name question: ${message}`);
  },
  choose: async (message) => {
    throw new Error(`unexpected choice: ${message}`);
  },
};
