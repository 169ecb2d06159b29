package manifest

import (
	"context"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// windowsExts are the executable types of Windows packages.
var windowsExts = []string{".exe", ".cmd", ".bat", ".ps1"}

// tree collects a package's entries, whether from a zip or a directory,
// and applies the rules that do not depend on where they came from.
type tree struct {
	lim   Limits
	rep   Report
	files []File
	// paths maps each cleaned entry path (files and directories) to
	// whether it is a directory, for the duplicate checks.
	entries []treeEntry

	manifest     []byte
	haveManifest bool
	nested       string // a package.manifest one folder down
	miscased     string // a root manifest spelled in another case
}

type treeEntry struct {
	path string
	dir  bool
}

// entryPath applies the naming rules to a raw entry name. It returns the
// cleaned slash-separated path, or ok false when the entry must be skipped
// (a problem was reported, or the name is the root itself).
func (t *tree) entryPath(raw string) (string, bool) {
	if raw == "" || !utf8.ValidString(raw) || strings.IndexFunc(raw, unicode.IsControl) >= 0 {
		t.rep.errorf(printable(raw), 0, RulePathInvalid,
			"entry name is empty, not UTF-8 or holds control characters; rename the file and zip it with a tool that stores UTF-8 names")
		return "", false
	}
	n := strings.ReplaceAll(raw, `\`, "/")
	switch {
	case strings.HasPrefix(n, "/"):
		t.rep.errorf(raw, 0, RulePathAbsolute, "entry name is absolute; zip the package with paths relative to its root")
		return "", false
	case len(n) >= 2 && n[1] == ':' && isLetter(n[0]):
		t.rep.errorf(raw, 0, RulePathDrive, "entry name starts with a drive letter; zip the package with paths relative to its root")
		return "", false
	}
	for _, seg := range strings.Split(n, "/") {
		if seg == ".." {
			t.rep.errorf(raw, 0, RulePathTraversal, "entry name climbs out of the package with ..; zip the package with paths inside its root")
			return "", false
		}
	}
	clean := path.Clean(n)
	if clean == "." {
		return "", false
	}
	return clean, true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// printable quotes a name that cannot be shown as is.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s), "?")
}

// addDir records a directory entry.
func (t *tree) addDir(clean string) {
	t.entries = append(t.entries, treeEntry{path: clean, dir: true})
}

// addFile records a regular file. It tells whether the file is the root
// manifest, whose bytes the caller then hands to setManifest.
func (t *tree) addFile(clean string, size int64, perm fs.FileMode) bool {
	t.entries = append(t.entries, treeEntry{path: clean})
	t.files = append(t.files, File{Path: clean, Size: size, Mode: perm})
	switch {
	case clean == ManifestName:
		return true
	case strings.EqualFold(clean, ManifestName):
		t.miscased = clean
	case t.nested == "" && strings.Count(clean, "/") == 1 && path.Base(clean) == ManifestName:
		t.nested = clean
	}
	return false
}

// setManifest keeps the bytes of the root manifest.
func (t *tree) setManifest(b []byte) {
	t.manifest, t.haveManifest = b, true
}

// finish parses the manifest and applies the rules that need the whole
// tree: duplicates, executables and the command's file. The error is ctx's,
// when it ended during the parse.
func (t *tree) finish(ctx context.Context) (*Manifest, error) {
	var m *Manifest
	switch {
	case t.haveManifest:
		wk := newWork(ctx)
		if m = parseManifest(wk, t.manifest, &t.rep); wk.err != nil {
			return nil, wk.err
		}
	case t.nested != "":
		t.rep.errorf(t.nested, 0, RuleManifestNested,
			"package.manifest is inside the folder %s/, not at the root of the zip; zip the folder's contents, not the folder", path.Dir(t.nested))
	case t.miscased != "":
		t.rep.errorf(t.miscased, 0, RuleManifestMissing,
			"the manifest must be named package.manifest, in lower case; rename %s", t.miscased)
	default:
		t.rep.errorf("", 0, RuleManifestMissing,
			"package.manifest is missing; put it at the root of the zip, next to the executable")
	}
	mode := Mode("")
	if m != nil {
		mode = m.Execution.Mode
	}
	t.duplicates(mode.OS() == "windows")
	if m != nil || !t.rep.Has(RuleManifestFormat) {
		// A manifest of another format says all there is to say: the
		// executable rule would only bury it.
		t.executables(m)
	}
	slices.SortStableFunc(t.files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	t.rep.sort()
	return m, nil
}

func (t *tree) duplicates(fold bool) {
	key := func(p string) string {
		if fold {
			return strings.ToLower(p)
		}
		return p
	}
	seen := make(map[string]bool, len(t.entries))
	var dirs map[string]bool
	for _, e := range t.entries {
		k := key(e.path)
		if e.dir {
			continue
		}
		if seen[k] {
			how := ""
			if fold {
				how = " (names are compared ignoring case for Windows packages)"
			}
			t.rep.errorf(e.path, 0, RulePathDuplicate, "the archive holds this file more than once%s; keep one", how)
			continue
		}
		seen[k] = true
	}
	for _, e := range t.entries {
		for d := path.Dir(e.path); d != "."; d = path.Dir(d) {
			if dirs == nil {
				dirs = map[string]bool{}
			}
			if dirs[key(d)] {
				break
			}
			dirs[key(d)] = true
		}
	}
	for _, f := range t.files {
		if dirs[key(f.Path)] {
			t.rep.errorf(f.Path, 0, RulePathDuplicate, "this name is both a file and a folder; rename one of them")
		}
	}
}

func (t *tree) executables(m *Manifest) {
	mode := Mode("")
	if m != nil {
		mode = m.Execution.Mode
	}
	found := false
	for _, f := range t.files {
		if isExecutable(f, mode) {
			found = true
			break
		}
	}
	if !found {
		what := ".exe, .cmd, .bat or .ps1 file"
		switch mode {
		case ModeSsh:
			what = ".sh file or a file with the executable bit (chmod 755)"
		case "":
			what = ".exe, .cmd, .bat, .ps1 or .sh file"
		}
		t.rep.errorf("", 0, RuleExecutableMissing, "the package holds no executable; add the %s that the command runs", what)
	}
	if m == nil || m.Execution.Command == "" || mode == "" {
		return
	}
	prog, ok := Program(m.Execution.Command)
	if !ok {
		return
	}
	fold := mode.OS() == "windows"
	for _, f := range t.files {
		if f.Path == prog || fold && strings.EqualFold(f.Path, prog) {
			if mode == ModeSsh && !f.Executable() {
				t.rep.warnf(f.Path, 0, RuleExecutableBitMissing,
					"the command's file is not executable in the archive; packflow sets the bit (chmod 755) before running it, but zip on Unix after chmod 755 to be sure")
			}
			return
		}
	}
	if namesPackageFile(firstWord(m.Execution.Command), mode) {
		t.rep.errorf("/Manifest/Execution/Command", m.Execution.Line, RuleCommandFile,
			"the command runs %s, which is not in the archive; paths are relative to the package root (a leading / means the root)", prog)
	}
}

func isExecutable(f File, mode Mode) bool {
	ext := strings.ToLower(path.Ext(f.Path))
	win := false
	for _, e := range windowsExts {
		if ext == e {
			win = true
		}
	}
	linux := ext == ".sh" || f.Executable()
	switch mode.OS() {
	case "windows":
		return win
	case "linux":
		return linux
	}
	return win || linux
}
