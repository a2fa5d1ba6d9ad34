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

var metaTmpl = template.Must(template.New("dbmeta").Funcs(template.FuncMap{"list": goList}).Parse(metaTemplate))

// metaData is what the metadata template prints.
type metaData struct {
	Package       string
	Queries       []method
	Tables        []string
	TriggerWrites []triggerWritesData
}

func metaFile(pkg string, ms []method, schema *Schema) ([]byte, error) {
	d := metaData{Package: pkg, Queries: ms}
	d.Tables, _ = usedSlots(ms, schema)
	for _, t := range d.Tables {
		if ws := schema.triggerTables(t); len(ws) > 0 {
			d.TriggerWrites = append(d.TriggerWrites, triggerWritesData{t, ws})
		}
	}
	return render(metaTmpl, d)
}
