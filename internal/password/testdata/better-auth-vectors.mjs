// Regenerates better-auth-vectors.json with Better-Auth's own hasher, so the
// Go verifier is checked against what Better-Auth really stores, not against
// our reading of its source. Node resolves imports next to the script, so
// copy it into a directory where better-auth 1.7.25 is installed (npm ci in
// ../shared/peers/better-auth, or in a copy of its package.json and
// package-lock.json) and run it there:
//
//   node better-auth-vectors.mjs > better-auth-vectors.json
import { hashPassword, verifyPassword } from "better-auth/crypto";
import { scrypt } from "node:crypto";

// Each password is hashed as written; "equivalent" lists other spellings
// with the same NFKC form, which must verify too (Better-Auth normalises
// before hashing, so these are how users on other keyboards type it).
const cases = [
  { name: "ascii", password: "correct horse battery staple", equivalent: [] },
  { name: "umlaut and fi ligature", password: "pässwörd \ufb01", equivalent: ["pa\u0308sswo\u0308rd fi"] },
  { name: "fullwidth", password: "\uff30\uff41\uff53\uff53\uff11\uff12\uff13 word", equivalent: ["Pass123 word"] },
  { name: "A-ring decomposed", password: "A\u030angstr\u00f6m", equivalent: ["\u00c5ngstr\u00f6m", "\u212bngstro\u0308m"] },
  { name: "empty", password: "", equivalent: [] },
];

const out = { generator: "better-auth 1.7.25 better-auth/crypto hashPassword", vectors: [] };
for (const c of cases) {
  const hash = await hashPassword(c.password);
  if (!(await verifyPassword({ hash, password: c.password }))) throw new Error("self-check failed");
  for (const e of c.equivalent) {
    if (!(await verifyPassword({ hash, password: e }))) throw new Error("equivalent spelling rejected by Better-Auth: " + c.name);
  }
  out.vectors.push({ ...c, hash });
}

// Better-Auth only writes lowercase hex, but an exported row may have been
// upper-cased on the way; the salt is used as the string it is, so an
// upper-case salt is a different salt. Made with node:crypto at Better-Auth's
// parameters, since Better-Auth cannot produce one.
const upperSalt = "00112233445566778899AABBCCDDEEFF";
const key = await new Promise((res, rej) =>
  scrypt("upper-case salt".normalize("NFKC"), upperSalt, 64, { N: 16384, r: 16, p: 1, maxmem: 128 * 16384 * 16 * 2 }, (e, k) => (e ? rej(e) : res(k))));
const upperHash = `${upperSalt}:${key.toString("hex").toUpperCase()}`;
if (!(await verifyPassword({ hash: `${upperSalt}:${key.toString("hex")}`, password: "upper-case salt" }))) throw new Error("upper-case salt self-check failed");
out.vectors.push({ name: "upper-case salt and key (node:crypto)", password: "upper-case salt", equivalent: [], hash: upperHash });

// Non-ASCII escaped, so composed and decomposed spellings differ visibly.
console.log(JSON.stringify(out, null, 2).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")));
