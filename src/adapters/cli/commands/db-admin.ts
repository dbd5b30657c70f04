// otpgate db import / db export (issue 11): each in its own module, exported here under the
// names the command table conventions use (runX, xHelp, xOptions for "otpgate db x").

export { importCommand as runImport, importHelp, importOptions } from "./db-import.js";
export { exportCommand as runExport, exportHelp, exportOptions } from "./db-export.js";
