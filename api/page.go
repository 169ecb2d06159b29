package api

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Limits of list pages.
const (
	defaultPageLimit = 50
	maxPageLimit     = 500
)

// pageRequest is what a list call asked for: at most Limit items after
// the position the cursor names.
type pageRequest struct {
	Limit int
	// After is the sort key of the last item of the previous page (the
	// cursor decoded); empty for the first page. paginate uses it.
	After string
	// Cursor is the cursor as sent, for lists paged by the store, whose
	// own next cursors (base64url, unpadded) go back to it unchanged.
	Cursor string
}

// page is the answer of every list: {"items": [...], "next_cursor": "..."}.
// NextCursor is empty on the last page.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// parsePage reads ?limit= (default 50, at most 500) and ?cursor= (opaque,
// from a previous page's next_cursor). Bad values give 400 naming them.
func parsePage(c echo.Context) (pageRequest, error) {
	req := pageRequest{Limit: defaultPageLimit}
	var errs []FieldError
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			errs = append(errs, FieldError{Path: "limit", Rule: "range",
				Message: "limit must be a whole number from 1 to " + strconv.Itoa(maxPageLimit)})
		} else {
			req.Limit = n
		}
	}
	if v := c.QueryParam("cursor"); v != "" {
		after, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(after) == 0 {
			errs = append(errs, FieldError{Path: "cursor", Rule: "cursor",
				Message: "cursor must be a next_cursor returned by an earlier page"})
		} else {
			req.After, req.Cursor = string(after), v
		}
	}
	if len(errs) > 0 {
		return pageRequest{}, queryProblem(errs)
	}
	return req, nil
}

// paginate cuts one page out of items, which must be sorted by key
// ascending with unique keys. The cursor encodes the key of the page's
// last item, so pages stay stable while items are added or removed.
func paginate[T any](items []T, req pageRequest, key func(T) string) page[T] {
	start := 0
	if req.After != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > req.After })
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	end := min(start+limit, len(items))
	out := page[T]{Items: items[start:end]}
	if out.Items == nil {
		out.Items = []T{}
	}
	if end < len(items) {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return out
}

// listPage answers a list call with one page of items (sorted by key).
func listPage[T any](c echo.Context, items []T, key func(T) string) error {
	req, err := parsePage(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, paginate(items, req, key))
}
