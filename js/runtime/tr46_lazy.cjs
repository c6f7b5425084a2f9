// tr46 (IDNA for host names) loaded on first use: its mapping tables take most of
// the Web classes' load time, and most isolates never parse a URL.
let tr46 = null;
const load = () => (tr46 ??= require("../node_modules/tr46/index.js"));
module.exports = {
  toASCII: (...args) => load().toASCII(...args),
  toUnicode: (...args) => load().toUnicode(...args),
};
