package manifest

import _ "embed"

//go:embed package.manifest.xsd
var schema []byte

// SchemaName is the file name the schema is published under.
const SchemaName = "package.manifest.xsd"

// Schema returns the XML Schema of package.manifest, extensions included,
// as served at GET /api/v1/schema/package.manifest.xsd. The caller gets its
// own copy.
func Schema() []byte { return append([]byte(nil), schema...) }
