// Package blob stores package archives: uploads waiting to be published
// and the published versions of the library.
//
// A Store is opened from a URL:
//
//	file:///var/lib/packflow/blobs   a directory (the default, under the data dir)
//	mem://                           process memory (tests, packflow dev)
//	s3://bucket/prefix?region=…      an S3 bucket, or an S3-compatible server
//	                                 (&endpoint=https://host:9000&path_style=true)
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
// fleet must open the same store: an s3:// bucket, or a file:// store on a
// shared mount (NFS, EFS, a Kubernetes ReadWriteMany volume), where Put's
// temporary-file-and-rename is atomic too. S3 requests are signed with
// Signature Version 4 by this package (no SDK); objects are written with
// one PUT after spooling to a temporary file, so a blob is bounded by what
// a single PUT takes (5 GiB), far above any upload limit. Tests run the
// signing code against AWS's published example and the store against an
// in-process S3 endpoint that checks every signature; GCS's XML API with
// HMAC keys speaks the same protocol but has not been tried.
package blob
