// esbuild bundles the page's stylesheet from this import; to TypeScript it is a module with no exports.
declare module '*.css';
