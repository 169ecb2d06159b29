package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// ruleUnknownField is the rule of a body field the route does not take
// (the other rules decodeJSON reports are ruleWrongType and ruleInvalid).
const ruleUnknownField = "unknown field"

// decodeJSON reads the request body, which must be sent as JSON
// (Content-Type application/json, or a +json type; otherwise 415), as one
// JSON value into v, a pointer to a struct.
//
// The body is checked against v's type before it is decoded, and every
// problem is reported at once in one 422: a field of the wrong type, an
// unknown field (a misspelt field is never silently ignored), at any
// depth, each with its path ("steps[2].parameters.Port"). "Malformed
// JSON" (400) is kept for bodies that are not JSON at all. A body over the
// limit gives 413.
func decodeJSON(c echo.Context, v any) error {
	if err := requireJSON(c.Request()); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // over the limit: 413 (problemFor)
	}
	return decodeBody(body, v)
}

// decodeBody is decodeJSON once the body is read.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newProblem(http.StatusBadRequest, "Malformed JSON", "the request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return malformedJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newProblem(http.StatusBadRequest, "Malformed JSON", "the body holds more than one JSON value")
	}
	if errs := checkJSON("", raw, reflect.TypeOf(v).Elem()); len(errs) > 0 {
		return validationProblem(errs)
	}
	strict := json.NewDecoder(bytes.NewReader(raw))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		// checkJSON found nothing, so this is a case it does not model;
		// still a problem of the request, reported as such.
		return validationProblem([]FieldError{{Path: "", Rule: ruleInvalid, Message: jsonErrorText(err)}})
	}
	return nil
}

// malformedJSON is the 400 for a body that is not JSON.
func malformedJSON(err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return newProblem(http.StatusBadRequest, "Malformed JSON",
			fmt.Sprintf("the body is not JSON: %s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset)).withCause(err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return newProblem(http.StatusBadRequest, "Malformed JSON", "the body ends in the middle of a JSON value").withCause(err)
	}
	return newProblem(http.StatusBadRequest, "Malformed JSON", "the body is not JSON").withCause(err)
}

// requireJSON refuses a body sent with any media type but JSON (415).
func requireJSON(r *http.Request) error {
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == echo.MIMEApplicationJSON || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	shown := ct
	if shown == "" {
		shown = "no Content-Type"
	}
	return newProblem(http.StatusUnsupportedMediaType, "",
		fmt.Sprintf("the body must be sent as application/json, not %s; set the header Content-Type: application/json", shown))
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// checkJSON reports every place where raw does not fit type t, which it
// would be decoded into: wrong JSON types and unknown object fields, each
// with its path under path. null fits everything, as in encoding/json.
func checkJSON(path string, raw json.RawMessage, t reflect.Type) []FieldError {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" || t == rawMessageType || t.Kind() == reflect.Interface {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		return checkJSON(path, raw, t.Elem())
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return decodeOne(path, raw, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return []FieldError{wrongType(path, raw, "an object")}
		}
		fields := jsonFields(t)
		var errs []FieldError
		for _, name := range sortedKeys(obj) {
			f, ok := fields.find(name)
			if !ok {
				errs = append(errs, FieldError{Path: join(path, name), Rule: ruleUnknownField,
					Message: fmt.Sprintf("unknown field %q; the fields here are %s", name, strings.Join(fields.names, ", "))})
				continue
			}
			errs = append(errs, checkJSON(join(path, f.name), obj[name], f.typ)...)
		}
		return errs
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return decodeOne(path, raw, t) // []byte is base64 text
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return []FieldError{wrongType(path, raw, "an array")}
		}
		var errs []FieldError
		for i, el := range arr {
			errs = append(errs, checkJSON(path+"["+strconv.Itoa(i)+"]", el, t.Elem())...)
		}
		return errs
	case reflect.Map:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return []FieldError{wrongType(path, raw, "an object")}
		}
		var errs []FieldError
		for _, k := range sortedKeys(obj) {
			errs = append(errs, checkJSON(join(path, k), obj[k], t.Elem())...)
		}
		return errs
	}
	return decodeOne(path, raw, t)
}

// decodeOne tries to decode raw into a new t, and reports why it cannot.
func decodeOne(path string, raw json.RawMessage, t reflect.Type) []FieldError {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return []FieldError{wrongType(path, raw, jsonKind(t))}
	}
	return []FieldError{{Path: path, Rule: ruleInvalid, Message: jsonErrorText(err)}}
}

// wrongType is the problem of a value of the wrong JSON type.
func wrongType(path string, raw json.RawMessage, want string) FieldError {
	where := path
	if where == "" {
		where = "the body"
	}
	return FieldError{Path: path, Rule: ruleWrongType,
		Message: fmt.Sprintf("%s must be %s, not %s", where, want, jsonValueKind(raw))}
}

// jsonKind names the JSON type a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// jsonValueKind names the JSON type of raw, for messages.
func jsonValueKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "the number " + string(raw)
	}
	if raw[0] == '-' {
		return "the negative number " + string(raw)
	}
	return "the number " + string(raw)
}

// jsonErrorText is an encoding/json error without its "json: " prefix,
// which means nothing to a caller.
func jsonErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonField is one field of a struct as encoding/json sees it.
type jsonField struct {
	name string
	typ  reflect.Type
}

type fieldSet struct {
	byName map[string]jsonField
	names  []string
}

// find matches a key to a field as encoding/json does: exactly, else
// without regard to case.
func (fs fieldSet) find(key string) (jsonField, bool) {
	if f, ok := fs.byName[key]; ok {
		return f, true
	}
	for name, f := range fs.byName {
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return jsonField{}, false
}

// jsonFields lists the JSON fields of struct type t, embedded structs'
// fields included.
func jsonFields(t reflect.Type) fieldSet {
	fs := fieldSet{byName: map[string]jsonField{}}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := fs.byName[name]; !dup {
				fs.byName[name] = jsonField{name: name, typ: ft}
				fs.names = append(fs.names, name)
			}
		}
	}
	walk(t)
	slices.Sort(fs.names)
	return fs
}
