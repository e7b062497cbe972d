/** This checkout. */
export declare const REPO: string;
/** node_modules of this checkout: the installed packages. */
export declare const NODE_MODULES: string;
/** Files made from installed packages and kept between runs (npm ci empties it with node_modules). */
export declare const CACHE_DIR: string;
/** The version of an installed package (`@scope/name`): what a file made from it is keyed by. */
export declare function installedVersion(name: string): string;
