// Package blob stores package archives: uploads waiting to be published
// and the published versions of the library.
//
// A Store is opened from a URL:
//
//	file:///var/lib/packflow/blobs   a directory (the default, under the data dir)
//	mem://                           process memory (tests, packflow dev)
//
// Keys are slash-separated relative paths such as "uploads/<id>.zip" or
// "packages/<uuid>/<upload id>.zip" (see UploadKey and PackageKey); each
// segment uses letters, digits and ". _ - +" only, so a key can never
// leave the store.
//
// Put streams a reader into the store while computing its size and sha256.
// The blob appears atomically (file stores write a temporary file next to
// the target and rename it): readers see the old blob or the new one,
// never a part. A Put that exceeds its MaxSize fails with ErrTooLarge and
// leaves nothing behind.
//
// Open returns an Object that reads sequentially, at offsets (zip readers
// need io.ReaderAt) and seeks (http.ServeContent), so one handle serves
// validation, copying and downloads.
//
// The API stores uploads and the workers read them, so every process of a
// fleet must open the same store. Today that is a file:// store on a
// shared mount (NFS, EFS, a Kubernetes ReadWriteMany volume): Put's
// temporary-file-and-rename is atomic there too. S3-compatible and GCS
// stores are future work: they fit behind the same backend interface (Put
// maps to a multipart upload, Open to ranged GETs) without changing
// callers.
package blob
