// Loaded into every test process (package.json, tap's node-arg). tap's process tracker
// (@tapjs/processinfo, which rides along in NODE_OPTIONS into every child) records each module a
// process loads: it reads the file again, searches it for a source-map comment, posts the whole
// text to the main thread and splits it into lines (hooks.mjs record(), line-lengths.js). Only
// files matching _TAPJS_PROCESSINFO_EXCLUDE_ are skipped, and tap sets that to its own folders,
// so node_modules is read too: for the 17 MB client-node bundle that is ~3.5 s of CPU in every
// runbook process a test starts. Coverage never reports node_modules (tap excludes it there), so
// leaving it out of the record changes no result. Children inherit the setting (processinfo
// copies its _TAPJS_PROCESSINFO_* variables into every spawn).
process.env._TAPJS_PROCESSINFO_EXCLUDE_ = String(
  /(^(node|tapmock):|[\\/](\.tap|tap-snapshots|node_modules)[\\/])/,
);
