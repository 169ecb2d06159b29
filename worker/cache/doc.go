// Package cache owns a worker node's install cache: the unpacked trees of
// the package versions installed on the node, under
//
//	<dir>/<uuid>/<version>/          one package version, immutable once there
//	<dir>/<uuid>/<version>/.packflow-installed   its completion marker
//	<dir>/.tmp/                      work space of installs in progress
//
// # Install
//
// Install fetches an archive through an opener the caller supplies (the
// blob store is not the cache's business), copies it into the cache's work
// space while computing its sha256, checks the digest and the size
// (ErrChecksum on a mismatch, leaving nothing behind), unpacks it with
// manifest.Extract, which re-applies every archive rule, writes the
// completion marker and renames the finished tree into place:
//
//	open blob ─▶ copy+hash ─▶ verify ─▶ Extract ─▶ marker ─▶ rename ─▶ visible
//	   └──────────── in .tmp/<session>/<install>/ ───────────┘
//
// A tree therefore appears whole or not at all, and a tree is trusted only
// when its marker names its UUID, version and sha256. Anything an
// interrupted install leaves is in .tmp, which the next Open clears. A
// package that ships a file named like the marker is refused (an error
// wrapping manifest.ErrInvalid).
//
// Nothing is fsynced: a killed or crashed process loses nothing that was
// made visible, but after a power loss a renamed tree may hold files whose
// data never reached the disk. Nodes that must survive that re-install
// with Force after an unclean boot.
//
// A forced install builds the new tree beside the old one and swaps the
// two (one atomic exchange on Linux, two renames elsewhere), then removes
// the old tree, so a reader never finds a partial tree. A reader walking
// the old tree while it is swapped out or pruned sees it vanish: callers
// that must not race re-installs serialize through their own scheduling.
//
// An installed tree whose marker names another sha256 (the version was
// re-published with a forced publish) does not count as installed: Install
// replaces it as if forced.
//
// # Concurrency
//
// Installs and prunes of one version are serialized inside a process.
// Processes sharing a directory are safe too: each works in its own
// session directory under .tmp, locked with flock while the cache is open,
// so Open removes only the work space of processes that are gone; and the
// final rename fails onto an existing tree, which then counts as installed
// when its marker matches.
//
// # Pruning
//
// Prune removes inactive versions, keeping per package the versions the
// caller names (the active closure, never pruned) plus Options.Keep more,
// the newest first: revision numbers ("1", "2") numerically, semantic
// versions by precedence, revisions before semantic versions, ties by
// install time.
//
// # Names
//
// UUIDs must be lower-case 8-4-4-4-12 hex, versions a revision number or a
// canonical semantic version (as the library records them), and digests 64
// hex digits; anything else is refused with ErrInvalidRef before it comes
// near a path.
package cache
