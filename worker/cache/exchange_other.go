//go:build !linux

package cache

// exchange swaps the directories at a and b with two renames: b is
// missing between them.
func exchange(a, b, spare string) error { return swapByRenames(a, b, spare) }
