package winrm

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// FaultError is a WS-Management fault answered by the server.
type FaultError struct {
	// Status is the HTTP status of the answer (usually 500).
	Status int
	// Subcode is the fault subcode, such as "w:TimedOut" or
	// "w:InvalidSelectors".
	Subcode string
	// Code is the numeric WSManFault code, such as 2150858793.
	Code string
	// Reason is the server's explanation.
	Reason string
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("winrm: fault %s (code %s, http %d): %s", e.Subcode, e.Code, e.Status, e.Reason)
}

func (e *FaultError) timedOut() bool {
	return strings.HasSuffix(e.Subcode, ":TimedOut") || e.Code == "2150858793"
}

// shellGone reports a fault saying the shell no longer exists on the
// server, as after the host restarted.
func (e *FaultError) shellGone() bool {
	return strings.HasSuffix(e.Subcode, ":InvalidSelectors") || e.Code == "2150858843"
}

// faultEnvelope is the part of a fault answer that parseFault reads.
type faultEnvelope struct {
	Fault struct {
		Subcode string `xml:"Code>Subcode>Value"`
		Reason  string `xml:"Reason>Text"`
		Detail  struct {
			WSManFault struct {
				Code    string `xml:"Code,attr"`
				Message string `xml:",innerxml"`
			} `xml:"WSManFault"`
		} `xml:"Detail"`
	} `xml:"Body>Fault"`
}

// parseFault reads a fault answer; an answer it cannot parse becomes a
// fault whose Reason is the start of the body.
func parseFault(b []byte) *FaultError {
	var env faultEnvelope
	if err := xml.Unmarshal(b, &env); err != nil || env.Fault.Subcode == "" && env.Fault.Reason == "" {
		return &FaultError{Subcode: "unparsed", Reason: truncate(string(b), 512)}
	}
	return &FaultError{
		Subcode: strings.TrimSpace(env.Fault.Subcode),
		Code:    env.Fault.Detail.WSManFault.Code,
		Reason:  strings.TrimSpace(env.Fault.Reason),
	}
}
