package cache

import (
	"fmt"
	"os"
)

// swapByRenames swaps the directories at a and b through the free path
// spare: b is missing between the first two renames. When the second
// rename fails, b is put back.
func swapByRenames(a, b, spare string) error {
	if err := os.Rename(b, spare); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		if rerr := os.Rename(spare, b); rerr != nil {
			return fmt.Errorf("%w (and restoring %s failed: %w)", err, b, rerr)
		}
		return err
	}
	return os.Rename(spare, a)
}
