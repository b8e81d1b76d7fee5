/** See thread-priority.mjs. */
export declare function lowerThreadPriority(nice: number, options?: { readonly idle?: boolean }): boolean;
/** See thread-priority.mjs. */
export declare function nameThread(name: string): boolean;
