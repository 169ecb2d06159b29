package winrm

import "context"

// Remove deletes the remote path p (an absolute Windows path) and
// everything below it with Remove-Item -Recurse -Force. A path that does
// not exist is not an error. Empty paths, drive roots, UNC paths and paths
// with . or .. components are refused with remote.ErrUnsafeValue.
func (c *Client) Remove(ctx context.Context, p string) error {
	if err := checkRemovable(p); err != nil {
		return err
	}
	return c.runScript(ctx, "remove "+p, removeScript(p), nil, nil)
}
