#!/bin/sh
//bin/true; exec node --import "$(dirname "$(dirname "$(realpath "$0")")")/lib/ts-loader/register.mjs" "$0" "$@"
// The yardstick of `npm run bench:help`: a script started as the runbooks are, importing zx and
// printing a line.
import { $ } from 'zx';

console.log(`bare zx script (${typeof $})`);
