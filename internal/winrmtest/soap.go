package winrmtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// XML namespaces of the WS-Management shell protocol.
const (
	nsSOAP      = "http://www.w3.org/2003/05/soap-envelope"
	nsAddress   = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsTransfer  = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSMan     = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsShell     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsFault     = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	anonymousTo = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// Actions the endpoint answers.
const (
	actionCreate  = nsTransfer + "/Create"
	actionDelete  = nsTransfer + "/Delete"
	actionCommand = nsShell + "/Command"
	actionSend    = nsShell + "/Send"
	actionReceive = nsShell + "/Receive"
	actionSignal  = nsShell + "/Signal"

	resourceCmd      = nsShell + "/cmd"
	stateDone        = nsShell + "/CommandState/Done"
	stateRunning     = nsShell + "/CommandState/Running"
	signalTerminate  = nsShell + "/signal/terminate"
	signalCtrlC      = nsShell + "/signal/ctrl_c"
	signalCtrlBreak  = nsShell + "/signal/ctrl_break"
	faultActionWSMan = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
)

// envelope is the part of a request envelope the endpoint reads.
type envelope struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  header   `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body    body     `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

type header struct {
	Action           string      `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
	MessageID        string      `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
	ResourceURI      string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
	MaxEnvelopeSize  string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
	OperationTimeout string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
	SelectorSet      selectorSet `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
	OptionSet        optionSet   `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet"`
}

type selectorSet struct {
	Selectors []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
}

type optionSet struct {
	Options []nameValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Option"`
}

type nameValue struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type body struct {
	Shell       *shellBody   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
	CommandLine *commandLine `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
	Send        *sendBody    `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
	Receive     *receiveBody `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
	Signal      *signalBody  `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
}

type shellBody struct {
	InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
	OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
	// Environment holds the variables a client asks the shell to set.
	Environment struct {
		Variables []nameValue `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Variable"`
	} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Environment"`
}

type commandLine struct {
	Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
	Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
}

type sendBody struct {
	Streams []stream `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
}

type stream struct {
	Name      string `xml:"Name,attr"`
	CommandID string `xml:"CommandId,attr"`
	End       string `xml:"End,attr"`
	Data      []byte `xml:",chardata"`
}

type receiveBody struct {
	DesiredStream struct {
		CommandID string `xml:"CommandId,attr"`
		Streams   string `xml:",chardata"`
	} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
}

type signalBody struct {
	CommandID string `xml:"CommandId,attr"`
	Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
}

// parseEnvelope decodes a request envelope.
//
// A Send carries up to the whole envelope as the base64 text of one
// rsp:Stream element, which encoding/xml reads a byte at a time. That text
// is cut out before decoding the rest and put back afterwards, when the
// decoded envelope proves it was the text of the only stream of a Send;
// anything else falls back to decoding the whole envelope.
func parseEnvelope(b []byte) (*envelope, error) {
	if text, rest, ok := cutStreamText(b); ok {
		env, err := decodeEnvelope(rest)
		if err == nil && env.Body.Send != nil && len(env.Body.Send.Streams) == 1 &&
			len(env.Body.Send.Streams[0].Data) == 0 {
			env.Body.Send.Streams[0].Data = text
			return env, nil
		}
	}
	return decodeEnvelope(b)
}

func decodeEnvelope(b []byte) (*envelope, error) {
	var env envelope
	if err := xml.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return &env, nil
}

// cutStreamText finds the first element named Stream (any prefix) whose
// text is plain (no markup, no entity) and returns that text and b without
// it.
func cutStreamText(b []byte) (text, rest []byte, ok bool) {
	for from := 0; ; {
		i := bytes.Index(b[from:], []byte("Stream"))
		if i < 0 {
			return nil, nil, false
		}
		i += from
		from = i + len("Stream")
		if from >= len(b) || (b[from] != ' ' && b[from] != '>') {
			continue
		}
		// Walk back over an optional prefix to the '<' of a start tag.
		j := i - 1
		for j >= 0 && b[j] != '<' && b[j] != '>' && b[j] != ' ' && b[j] != '/' {
			j--
		}
		if j < 0 || b[j] != '<' {
			continue
		}
		gt := bytes.IndexByte(b[from:], '>')
		if gt < 0 {
			return nil, nil, false
		}
		gt += from
		if b[gt-1] == '/' {
			continue // an empty element
		}
		lt := bytes.IndexByte(b[gt:], '<')
		if lt < 0 {
			return nil, nil, false
		}
		lt += gt
		text = b[gt+1 : lt]
		if bytes.IndexByte(text, '&') >= 0 {
			return nil, nil, false
		}
		rest = make([]byte, 0, len(b)-len(text))
		rest = append(append(rest, b[:gt+1]...), b[lt:]...)
		return text, rest, true
	}
}

// selector returns the value of the named selector, or "".
func (h *header) selector(name string) string {
	for _, s := range h.SelectorSet.Selectors {
		if s.Name == name {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

// operationTimeout parses the xs:duration of OperationTimeout in the simple
// forms clients send ("PT60S", "PT1.5S", "PT2M"); zero when absent or
// malformed.
func (h *header) operationTimeout() time.Duration {
	s := strings.TrimSpace(h.OperationTimeout)
	if !strings.HasPrefix(s, "PT") {
		return 0
	}
	d, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(s, "PT")))
	if err != nil {
		return 0
	}
	return d
}

// escape returns s escaped for XML text and attribute values.
func escape(s string) string {
	var b bytes.Buffer
	// EscapeText only fails when the writer fails; bytes.Buffer never does.
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// reply builds a response envelope around body.
func reply(action, relatesTo, body string) []byte {
	var b strings.Builder
	b.WriteString(`<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddress +
		`" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell + `">`)
	b.WriteString(`<s:Header><a:Action>` + escape(action) + `</a:Action>`)
	b.WriteString(`<a:MessageID>uuid:` + newID() + `</a:MessageID>`)
	b.WriteString(`<a:To>` + anonymousTo + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>` + escape(relatesTo) + `</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header><s:Body>`)
	b.WriteString(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return []byte(b.String())
}

func createResponse(relatesTo, address, shellID string) []byte {
	body := `<x:ResourceCreated><a:Address>` + escape(address) + `</a:Address><a:ReferenceParameters>` +
		`<w:ResourceURI>` + resourceCmd + `</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` +
		shellID + `</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
		`<rsp:Shell><rsp:ShellId>` + shellID + `</rsp:ShellId><rsp:ResourceUri>` + resourceCmd +
		`</rsp:ResourceUri><rsp:InputStreams>stdin</rsp:InputStreams>` +
		`<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`
	return reply(actionCreate+"Response", relatesTo, body)
}

func commandResponse(relatesTo, commandID string) []byte {
	return reply(actionCommand+"Response", relatesTo,
		`<rsp:CommandResponse><rsp:CommandId>`+commandID+`</rsp:CommandId></rsp:CommandResponse>`)
}

// receiveResponse carries output chunks and, once the command ended, its
// final state and exit code.
func receiveResponse(relatesTo, commandID string, stdout, stderr []byte, done bool, exitCode int) []byte {
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	writeStream := func(name string, data []byte) {
		if len(data) == 0 && !done {
			return
		}
		b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + commandID + `"`)
		if done {
			b.WriteString(` End="true"`)
		}
		b.WriteString(`>`)
		b.WriteString(encodeBase64(data))
		b.WriteString(`</rsp:Stream>`)
	}
	writeStream("stdout", stdout)
	writeStream("stderr", stderr)
	if done {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`,
			commandID, stateDone, exitCode)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, commandID, stateRunning)
	}
	b.WriteString(`</rsp:ReceiveResponse>`)
	return reply(actionReceive+"Response", relatesTo, b.String())
}

func sendResponse(relatesTo string) []byte {
	return reply(actionSend+"Response", relatesTo, `<rsp:SendResponse/>`)
}

func signalResponse(relatesTo string) []byte {
	return reply(actionSignal+"Response", relatesTo, `<rsp:SignalResponse/>`)
}

func deleteResponse(relatesTo string) []byte {
	return reply(actionDelete+"Response", relatesTo, ``)
}

// fault builds a WS-Management fault. subcode is a wsman fault subcode such
// as "w:TimedOut"; code is the numeric WSManFault code.
func fault(relatesTo, subcode string, code uint32, reason string) []byte {
	body := `<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>` + escape(subcode) +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + escape(reason) +
		`</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="` + nsFault + `" Code="` +
		fmt.Sprint(code) + `" Machine="127.0.0.1"><f:Message>` + escape(reason) +
		`</f:Message></f:WSManFault></s:Detail></s:Fault>`
	return reply(faultActionWSMan, relatesTo, body)
}

// WS-Management fault codes used by the endpoint (values Windows reports).
const (
	codeTimedOut         = 2150858793
	codeInvalidSelectors = 2150858843
	codeEnvelopeTooLarge = 2150858817
	codeUnsupported      = 2150858771
)

// timedOutFault is what a Receive answers when no output arrived within
// the OperationTimeout, as Windows does.
func timedOutFault(relatesTo string) []byte {
	return fault(relatesTo, "w:TimedOut", codeTimedOut,
		"The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
}
