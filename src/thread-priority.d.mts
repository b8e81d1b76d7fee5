/** See thread-priority.mjs. */
export declare function lowerThreadPriority(nice: number): boolean;
