package api

import (
	"slices"

	"github.com/packflow/packflow/remote"
)

// Password values are shown masked (remote.MaskText). An edit may send a
// masked value back unchanged to keep the stored password: keepMasked
// puts the stored value back, and the edit is then refused (keptNotSecret)
// unless the same parameter is still a password. Otherwise an edit could
// launder a stored password into a plain value that every viewer reads.

// keepMasked replaces in params each masked value by the stored value of
// the same parameter, when that parameter held a secret (named in
// oldSecrets); it returns the parameters so kept. A masked value for a
// parameter that held no secret stays as sent, and is checked as any
// value is.
func keepMasked(params, old map[string]string, oldSecrets []string) []string {
	var kept []string
	for k, v := range params {
		if v != remote.MaskText || !slices.Contains(oldSecrets, k) {
			continue
		}
		if stored, ok := old[k]; ok {
			params[k] = stored
			kept = append(kept, k)
		}
	}
	slices.Sort(kept)
	return kept
}

// keptNotSecret reports each kept parameter that is not a secret of the
// edited record (secrets): its stored password may not become a plain
// value. prefix is the path of the parameters ("steps[0].parameters").
func keptNotSecret(prefix string, kept, secrets []string) []FieldError {
	var errs []FieldError
	for _, k := range kept {
		if slices.Contains(secrets, k) {
			continue
		}
		errs = append(errs, FieldError{Path: prefix + "." + k, Rule: ruleInvalid,
			Message: "the masked value keeps a stored password, which only a Password parameter may hold; " +
				"this parameter is not one in the version chosen, so send its value in clear"})
	}
	return errs
}
