// The system clock behind the Clock port.

import type { Clock } from "../ports/index.js";

export const systemClock: Clock = { nowMs: () => Date.now() };
