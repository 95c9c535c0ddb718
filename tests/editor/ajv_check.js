// Compile the schema with Ajv (draft 2020-12) in strict mode, as most Node tools would, and
// validate the documents given on stdin (a JSON list).
//   node ajv_check.js SCHEMA.json < documents.json
// Prints {"logged": [...], "valid": [true, false, ...]}; a schema Ajv refuses exits 1 with the reason.
"use strict";
const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020").default;

// The schema's only keywords outside JSON Schema: the ones editors read for messages and
// completion (docs/schedule-format.md, "In your editor"). Strict mode refuses undeclared ones.
const EDITOR_KEYWORDS = ["errorMessage", "patternErrorMessage", "defaultSnippets"];

const logged = [];
const record = (level) => (...args) => logged.push(`${level}: ${args.join(" ")}`);
const ajv = new Ajv2020({
  // Every strict check as an error, not a log line; strictRequired stays off (Ajv's default),
  // since it refuses `required` in oneOf/allOf branches, which is how JSON Schema says "one of".
  strict: true,
  strictRequired: false,
  allErrors: true,
  logger: {log: record("log"), warn: record("warn"), error: record("error")},
});
for (const keyword of EDITOR_KEYWORDS) ajv.addKeyword(keyword);

let validate;
try {
  validate = ajv.compile(JSON.parse(fs.readFileSync(process.argv[2], "utf8")));
} catch (e) {
  process.stdout.write(JSON.stringify({error: e.message, logged}) + "\n");
  process.exit(1);
}
const documents = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({logged, valid: documents.map((d) => validate(d))}) + "\n");
