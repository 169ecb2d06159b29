package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Output of the client commands: a table for people by default, or the
// API's records as JSON or YAML for scripts (-o json|yaml). Tables and
// the key/value view show times, durations and file modes as people read
// them (2026-01-02 15:04:05Z, 5s, 0755); JSON and YAML keep the API's
// values untouched.

// addOutputFlag declares -o on a command.
func addOutputFlag(f *flagSet) *string {
	return f.fs.String("o", "table", "output format: table, json or yaml")
}

// printer writes records in one format.
type printer struct {
	w      io.Writer
	format string
}

func newPrinter(w io.Writer, format string) (*printer, error) {
	switch format {
	case "table", "json", "yaml":
		return &printer{w: w, format: format}, nil
	}
	return nil, usageError{fmt.Errorf("-o %q: want table, json or yaml", format)}
}

// column is one column of a table: a header and the record's key (a dot
// path into nested objects).
type column struct{ header, key string }

// cols makes columns whose headers are their keys, upper-cased.
func cols(keys ...string) []column {
	out := make([]column, len(keys))
	for i, k := range keys {
		out[i] = column{header: strings.ToUpper(strings.ReplaceAll(k, "_", " ")), key: k}
	}
	return out
}

// print writes v, a decoded JSON value: a list as a table of columns (all
// keys when columns is nil), an object as key: value lines.
func (p *printer) print(v any, columns []column) error {
	v = generic(v)
	switch p.format {
	case "json":
		return printJSON(p.w, v)
	case "yaml":
		var b strings.Builder
		writeYAML(&b, v, 0)
		_, err := io.WriteString(p.w, b.String())
		return err
	}
	switch t := v.(type) {
	case []any:
		return p.table(t, columns)
	case map[string]any:
		return p.object(t)
	}
	_, err := fmt.Fprintln(p.w, human("", v))
	return err
}

func (p *printer) table(rows []any, columns []column) error {
	if columns == nil {
		seen := map[string]bool{}
		var keys []string
		for _, r := range rows {
			if m, ok := r.(map[string]any); ok {
				for k := range m {
					if !seen[k] {
						seen[k] = true
						keys = append(keys, k)
					}
				}
			}
		}
		sort.Strings(keys)
		columns = cols(keys...)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	hs := make([]string, len(columns))
	for i, c := range columns {
		hs[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(hs, "\t"))
	for _, r := range rows {
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i] = cell(human(lastKey(c.key), lookup(r, c.key)))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func (p *printer) object(m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s:\t%s\n", k, cell(human(k, m[k])))
	}
	return tw.Flush()
}

// cell keeps a table cell on one line.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", `\n`)
	return strings.ReplaceAll(s, "\t", " ")
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// lookup follows a dot path into nested objects.
func lookup(v any, path string) any {
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// human renders one value of key for people.
func human(key string, v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		if strings.HasSuffix(key, "_at") || key == "time" || key == "last_heartbeat" || strings.HasPrefix(key, "next_run") {
			if tm, err := time.Parse(time.RFC3339Nano, t); err == nil {
				return tm.UTC().Format("2006-01-02 15:04:05Z")
			}
		}
		return t
	case float64:
		return humanNumber(key, t)
	case bool:
		return strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			switch x.(type) {
			case map[string]any, []any:
				b, _ := json.Marshal(x)
				parts = append(parts, string(b))
			default:
				parts = append(parts, human(key, x))
			}
		}
		return strings.Join(parts, ",")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// durationKeys are fields the API gives as nanoseconds.
var durationKeys = map[string]bool{"timeout": true, "backoff": true, "backoff_max": true, "duration": true, "interval": true, "step_timeout": true}

func humanNumber(key string, n float64) string {
	switch {
	case durationKeys[key] || strings.HasSuffix(key, "_ns"):
		return time.Duration(n).String()
	case key == "mode" || strings.HasSuffix(key, "_mode"):
		return fmt.Sprintf("%04o", int64(n))
	case key == "size" || strings.HasSuffix(key, "_bytes"):
		return humanBytes(int64(n))
	case strings.HasSuffix(key, "_ms"):
		return (time.Duration(n * float64(time.Millisecond))).String()
	}
	if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
		return strconv.FormatInt(int64(n), 10)
	}
	return strconv.FormatFloat(n, 'g', -1, 64)
}

// humanBytes writes a size with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// writeYAML writes a decoded JSON value as block YAML: keys and simple
// strings plain, other strings as JSON strings (which YAML reads as
// double-quoted scalars).
func writeYAML(b *strings.Builder, v any, indent int) {
	pad := strings.Repeat("  ", indent)
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			b.WriteString(pad + "{}\n")
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(pad + yamlScalar(k) + ":")
			writeYAMLChild(b, t[k], indent)
		}
	case []any:
		if len(t) == 0 {
			b.WriteString(pad + "[]\n")
			return
		}
		for _, x := range t {
			if m, ok := x.(map[string]any); ok && len(m) > 0 {
				// "- key: value" with the item's other keys below it.
				var item strings.Builder
				writeYAML(&item, m, indent+1)
				b.WriteString(pad + "- " + item.String()[len(pad)+2:])
				continue
			}
			b.WriteString(pad + "-")
			writeYAMLChild(b, x, indent)
		}
	default:
		b.WriteString(pad + yamlScalar(t) + "\n")
	}
}

func writeYAMLChild(b *strings.Builder, v any, indent int) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) > 0 {
			b.WriteString("\n")
			writeYAML(b, t, indent+1)
			return
		}
		b.WriteString(" {}\n")
	case []any:
		if len(t) > 0 {
			b.WriteString("\n")
			writeYAML(b, t, indent+1)
			return
		}
		b.WriteString(" []\n")
	default:
		b.WriteString(" " + yamlScalar(t) + "\n")
	}
}

// plainYAML matches strings YAML reads back as the same string unquoted.
var plainYAML = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./@-]*$`)

// yamlKeywords are plain words YAML 1.1 reads as something else.
var yamlKeywords = map[string]bool{"true": true, "false": true, "yes": true, "no": true, "on": true,
	"off": true, "null": true, "y": true, "n": true}

func yamlScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if plainYAML.MatchString(t) && !yamlKeywords[strings.ToLower(t)] {
			return t
		}
		b, _ := json.Marshal(t)
		return string(b)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// isTerminal reports whether w is a terminal, for progress that redraws
// a line; piped output gets plain lines instead.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Exit statuses of the client commands beyond exitOK, exitError and
// exitUsage: a watched run that was cancelled or timed out.
const exitCancelled = 3

// exitStatusError ends a command with a given exit status.
type exitStatusError struct {
	code int
	err  error
}

func (x exitStatusError) Error() string { return x.err.Error() }
func (x exitStatusError) Unwrap() error { return x.err }

// exitCode returns the exit status an error asks for, if any.
func exitCode(err error) (int, bool) {
	var x exitStatusError
	if errors.As(err, &x) {
		return x.code, true
	}
	return 0, false
}

// generic turns any JSON-encodable value into maps, slices and scalars.
func generic(v any) any {
	switch t := v.(type) {
	case nil, map[string]any, []any, string, float64, bool:
		return v
	case json.RawMessage:
		var out any
		if json.Unmarshal(t, &out) == nil {
			return out
		}
		return string(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return string(b)
	}
	return out
}
