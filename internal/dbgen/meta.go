package dbgen

import (
	_ "embed"
	"text/template"
)

// Emitting db/dbmeta: what each query is (its kind, the tables it reads
// and writes) and the schema's trigger writes, for every package that
// needs them without the cache (replica routing).

//go:embed dbmeta.go.tmpl
var metaTemplate string

// metaData is what the metadata template prints.
type metaData struct {
	Package string
	Queries []method
	Tables  []string
}

func metaFile(pkg string, ms []method, schema *Schema) ([]byte, error) {
	d := metaData{Package: pkg, Queries: ms}
	d.Tables, _ = usedSlots(ms, schema)
	return render(template.Must(template.New("dbmeta").Funcs(template.FuncMap{
		"list": goList, "triggerTables": schema.triggerTables,
	}).Parse(metaTemplate)), d)
}
