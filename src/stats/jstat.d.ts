// The part of jstat 1.9.6 (no published types) that src/stats uses.
declare module 'jstat' {
  interface Normal {
    inv(p: number, mean: number, sd: number): number;
    cdf(x: number, mean: number, sd: number): number;
  }
  const jstat: { readonly jStat: { readonly normal: Normal } };
  export default jstat;
}
