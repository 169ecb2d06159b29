package manifest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxManifestSize is the largest package.manifest accepted (1 MiB).
const MaxManifestSize = 1 << 20

// Limits on the shape of the XML tree, so hostile input cannot make the
// parser allocate or report without bound. Real manifests have a few dozen
// elements of at most ten attributes.
const (
	maxDepth             = 32
	maxElements          = 5000
	maxElementAttributes = 64
	maxAttributes        = 10000
)

// checkEvery is how many steps of work a parse does between looks at its
// context.
const checkEvery = 1024

// work counts the steps of one parse (a token, an attribute, a child
// element, a command segment), so that tests can tell the parse is linear
// in its input, and looks at the context every checkEvery steps, so that a
// parse stops soon after its caller gave up.
type work struct {
	ctx   context.Context
	steps int
	next  int
	err   error
}

func newWork(ctx context.Context) *work { return &work{ctx: ctx, next: checkEvery} }

// add counts n steps and tells whether the parse may go on.
func (w *work) add(n int) bool {
	w.steps += n
	if w.steps >= w.next {
		w.next = w.steps + checkEvery
		if w.err == nil {
			if err := w.ctx.Err(); err != nil {
				w.err = fmt.Errorf("manifest: parse %s: %w", ManifestName, err)
			}
		}
	}
	return w.err == nil
}

// Parse reads a package.manifest and validates it on its own (rules that
// need the archive, such as the command's file being present, are applied by
// CheckArchive and CheckDir). The error is for reading r only; validation
// problems are in the Report. The Manifest is nil when the XML could not be
// read at all, and otherwise holds what could be understood even when the
// report has errors.
func Parse(r io.Reader) (*Manifest, Report, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, Report{}, fmt.Errorf("manifest: read %s: %w", ManifestName, err)
	}
	m, rep := ParseBytes(b)
	return m, rep, nil
}

// ParseBytes is Parse on a manifest already in memory.
func ParseBytes(b []byte) (*Manifest, Report) {
	var rep Report
	m := parseManifest(newWork(context.Background()), b, &rep)
	rep.sort()
	return m, rep
}

// node is one element of the manifest's XML tree.
type node struct {
	name  string
	line  int
	attrs []xml.Attr
	text  []byte
	kids  []*node
}

func (n *node) trimmed() string { return strings.TrimSpace(string(n.text)) }

// parseManifest parses and checks b; it stops early when wk's context
// ends, leaving wk.err set (the caller then returns that error, not the
// report).
func parseManifest(wk *work, b []byte, rep *Report) *Manifest {
	root := parseTree(wk, b, rep)
	if root == nil {
		return nil
	}
	if root.name != "Manifest" {
		rep.errorf("/"+root.name, root.line, RuleManifestRoot,
			"the root element is <%s>; a package.manifest starts with <Manifest> and holds <Metadata>, <Parameters> and <Execution>", root.name)
		return nil
	}
	w := walker{rep: rep, wk: wk}
	m := &Manifest{Parameters: []Parameter{}}
	w.attrs(root, "/Manifest")
	kids, _ := w.elems(root, "/Manifest", []string{"Metadata", "Parameters", "Execution"}, "")
	if n := kids["Metadata"]; n != nil {
		w.metadata(n, &m.Metadata)
	} else {
		rep.errorf("/Manifest", root.line, RuleManifestElementMissing,
			"<Metadata> is missing; add <Metadata> with <UUID>, <Name> and <Description>")
	}
	if n := kids["Parameters"]; n != nil {
		m.Parameters = w.parameters(n)
	}
	if n := kids["Execution"]; n != nil {
		w.execution(n, &m.Execution)
		w.commandVariables(m)
		w.commandShell(m)
	} else {
		rep.errorf("/Manifest", root.line, RuleManifestElementMissing,
			"<Execution> is missing; add <Execution> with <Mode> and <Command>")
	}
	for i, r := range m.Metadata.Requires {
		if r.UUID != "" && r.UUID == m.Metadata.UUID {
			rep.errorf(fmt.Sprintf("/Manifest/Metadata/Requires/Package[%d]/@UUID", i+1), r.Line, RuleRequiresSelf,
				"the package requires itself (%s); remove that <Package>", r.UUID)
		}
	}
	return m
}

// parseTree decodes b into a tree, reporting encoding and syntax problems.
func parseTree(wk *work, b []byte, rep *Report) *node {
	if len(b) > MaxManifestSize {
		rep.errorf(ManifestName, 0, RuleManifestSize,
			"package.manifest is larger than %d bytes; it should hold only metadata, parameters and the command", MaxManifestSize)
		return nil
	}
	if bytes.HasPrefix(b, []byte{0xFE, 0xFF}) || bytes.HasPrefix(b, []byte{0xFF, 0xFE}) {
		rep.errorf(ManifestName, 1, RuleManifestEncoding,
			"package.manifest is saved as UTF-16; save it as UTF-8 (with or without BOM)")
		return nil
	}
	b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
	if !utf8.Valid(b) {
		line := 1
		for i := 0; i < len(b); {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			if r == '\n' {
				line++
			}
			i += size
		}
		rep.errorf(ManifestName, line, RuleManifestEncoding,
			"package.manifest is not valid UTF-8 at this line; save it as UTF-8 (with or without BOM)")
		return nil
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '<' {
		rep.errorf(ManifestName, 1, RuleManifestFormat,
			"package.manifest is %s, not a Blueprint package.manifest (an XML document starting with <Manifest>); "+
				"this archive is a package of another platform, or its manifest is missing", foreignKind(b))
		return nil
	}
	var declared string
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "us-ascii", "ascii", "utf8":
			return input, nil
		}
		declared = label
		return nil, errors.New("unsupported encoding")
	}
	var (
		root          *node
		stack         []*node
		count, nattrs int
	)
	for {
		if !wk.add(1) {
			return nil
		}
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if declared != "" {
				rep.errorf(ManifestName, 1, RuleManifestEncoding,
					"package.manifest declares encoding %q; save it as UTF-8 and declare encoding=\"UTF-8\"", declared)
				return nil
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				line = se.Line
			}
			rep.errorf(ManifestName, line, RuleManifestSyntax,
				"package.manifest is not well-formed XML: %s; fix the XML (an XML editor or xmllint shows where)", xmlMessage(err))
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			nattrs += len(t.Attr)
			if !wk.add(len(t.Attr)) {
				return nil
			}
			switch {
			case len(stack) >= maxDepth:
				rep.errorf(ManifestName, line, RuleManifestLimits,
					"package.manifest nests elements more than %d deep; a manifest needs at most a few levels", maxDepth)
				return nil
			case count > maxElements:
				rep.errorf(ManifestName, line, RuleManifestLimits,
					"package.manifest has more than %d elements; a manifest needs a few dozen", maxElements)
				return nil
			case len(t.Attr) > maxElementAttributes:
				rep.errorf(ManifestName, line, RuleManifestLimits,
					"<%s> has %d attributes, more than %d; a manifest's elements need at most ten", t.Name.Local, len(t.Attr), maxElementAttributes)
				return nil
			case nattrs > maxAttributes:
				rep.errorf(ManifestName, line, RuleManifestLimits,
					"package.manifest has more than %d attributes; a manifest needs a few hundred at most", maxAttributes)
				return nil
			}
			if root != nil && len(stack) == 0 {
				rep.errorf(ManifestName, line, RuleManifestSyntax,
					"package.manifest has a second root element <%s>; keep everything inside one <Manifest>", t.Name.Local)
				return nil
			}
			if dup := duplicateAttr(t.Attr); dup != "" {
				rep.errorf(ManifestName, line, RuleManifestSyntax,
					"<%s> has attribute %s twice; keep one", t.Name.Local, dup)
				return nil
			}
			n := &node{name: t.Name.Local, line: line, attrs: t.Attr}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		}
	}
	if root == nil {
		rep.errorf(ManifestName, 1, RuleManifestSyntax,
			"package.manifest holds no XML element; it must start with <Manifest>")
	}
	return root
}

// xmlMessage strips the decoder's own prefix from err.
func xmlMessage(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return se.Msg
	}
	return err.Error()
}

// duplicateAttr returns the name of an attribute given twice, or "", in
// time linear in the number of attributes.
func duplicateAttr(attrs []xml.Attr) string {
	seen := make(map[xml.Name]struct{}, len(attrs))
	for _, a := range attrs {
		if _, dup := seen[a.Name]; dup {
			if a.Name.Space != "" {
				return a.Name.Space + ":" + a.Name.Local
			}
			return a.Name.Local
		}
		seen[a.Name] = struct{}{}
	}
	return ""
}

// walker turns the tree into typed structs, reporting as it goes.
type walker struct {
	rep *Report
	wk  *work
}

// attrs returns n's attributes by name, warning about names not in known.
// Namespaced attributes (xmlns, xsi:…) are left alone.
func (w walker) attrs(n *node, path string, known ...string) map[string]string {
	w.wk.add(len(n.attrs))
	out := make(map[string]string, len(n.attrs))
	for _, a := range n.attrs {
		if a.Name.Space != "" || a.Name.Local == "xmlns" {
			continue
		}
		if !contains(known, a.Name.Local) {
			w.rep.warnf(path+"/@"+a.Name.Local, n.line, RuleManifestAttributeUnknown,
				"<%s> has no attribute %s%s; it is ignored", n.name, a.Name.Local, suggest(a.Name.Local, known))
			continue
		}
		out[a.Name.Local] = a.Value
	}
	return out
}

// elems sorts n's children into the single-occurrence ones (by name) and the
// repeated ones (named multi), reporting duplicates and unknown elements.
func (w walker) elems(n *node, path string, single []string, multi string) (map[string]*node, []*node) {
	w.wk.add(len(n.kids))
	one := make(map[string]*node, len(single))
	var many []*node
	for _, k := range n.kids {
		switch {
		case multi != "" && k.name == multi:
			many = append(many, k)
		case contains(single, k.name):
			if one[k.name] != nil {
				w.rep.errorf(path+"/"+k.name, k.line, RuleManifestElementDuplicate,
					"<%s> appears more than once in <%s>; keep one", k.name, n.name)
				continue
			}
			one[k.name] = k
		default:
			known := single
			if multi != "" {
				known = append(append([]string(nil), single...), multi)
			}
			w.rep.warnf(path+"/"+k.name, k.line, RuleManifestElementUnknown,
				"<%s> is not part of <%s>; it is ignored%s", k.name, n.name, suggest(k.name, known))
		}
	}
	return one, many
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest proposes a known name that differs only in case.
func suggest(name string, known []string) string {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf(" (names are case-sensitive: did you mean %s?)", k)
		}
	}
	return ""
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }
