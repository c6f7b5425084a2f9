// Nothing: only UTF-8 is used (the legacy multi-byte encodings are left out).
