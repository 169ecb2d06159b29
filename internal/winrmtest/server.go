package winrmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultUser            = "packflow"
	DefaultPassword        = "packflow-test-password"
	DefaultMaxEnvelopeSize = 500 * 1024 // Windows' MaxEnvelopeSizekb default is 500
	DefaultReceiveTimeout  = 2 * time.Second
)

// Command is one command a client started in a shell.
type Command struct {
	// ShellID and ID identify the shell and the command.
	ShellID, ID string
	// Line is the command line as the client sent it (rsp:Command).
	Line string
	// Args are the rsp:Arguments elements, in order.
	Args []string
	// Script is the decoded PowerShell script when the command line runs
	// powershell.exe with -EncodedCommand; empty otherwise.
	Script string
	// SkipCmdShell is the WINRS_SKIP_CMD_SHELL option: when true the
	// line is a process command line started as is; when false WinRM runs
	// it through cmd.exe /c.
	SkipCmdShell bool
	// Stdin carries what the client sends to the command's stdin; it ends
	// when the client closes stdin or the command is terminated.
	Stdin io.Reader
}

// Handler runs commands for the endpoint. ServeCommand writes the output
// of cmd to stdout and stderr and returns its exit code. ctx is cancelled
// when the client terminates the command or deletes its shell.
type Handler interface {
	ServeCommand(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int

// ServeCommand calls f.
func (f HandlerFunc) ServeCommand(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int {
	return f(ctx, cmd, stdout, stderr)
}

// Options configure an endpoint. The zero value is usable.
type Options struct {
	// Handler runs the commands. Nil answers every command with exit code
	// 1 and a "not recognized" message, as cmd.exe does.
	Handler Handler
	// User and Password are the only credentials accepted (defaults
	// DefaultUser and DefaultPassword).
	User, Password string
	// NTLM makes the endpoint offer and accept NTLMv2 (through the
	// Negotiate and NTLM schemes) instead of Basic.
	NTLM bool
	// MaxEnvelopeSize is the largest request accepted, in bytes; larger
	// requests get the fault Windows answers (default
	// DefaultMaxEnvelopeSize).
	MaxEnvelopeSize int
	// ReceiveTimeout bounds how long a Receive waits for output before it
	// answers the OperationTimeout fault (default DefaultReceiveTimeout;
	// the client's OperationTimeout is honoured when shorter).
	ReceiveTimeout time.Duration
	// Down, when set and returning true, makes the endpoint behave as a
	// host that is down: every connection is dropped without an answer and
	// every shell is forgotten.
	Down func() bool
	// Logger receives one debug line per request (default: discarded).
	Logger *slog.Logger
}

// Stats counts what the endpoint saw.
type Stats struct {
	// Requests counts authenticated requests by action name ("Create",
	// "Command", "Send", "Receive", "Signal", "Delete").
	Requests map[string]int
	// MaxRequestBytes is the size of the largest request body received.
	MaxRequestBytes int
	// StdinBytes is the number of decoded stdin bytes received by Send.
	StdinBytes int64
	// Unauthorized counts requests whose credentials were refused (the
	// 401 answers that are steps of an NTLM handshake do not count).
	Unauthorized int
	// Dropped counts requests dropped because the host was down.
	Dropped int
	// EnvVariables lists the environment variables Create requests asked
	// shells to set, as NAME=value.
	EnvVariables []string
}

// Recorded is a command as the endpoint received it.
type Recorded struct {
	Line   string
	Args   []string
	Script string
	// SkipCmdShell is the WINRS_SKIP_CMD_SHELL option (see Command).
	SkipCmdShell bool
}

// Server is a running WS-Management endpoint.
type Server struct {
	// URL is the endpoint address, ending in /wsman.
	URL string
	// Host and Port are where it listens (Host is a loopback address).
	Host string
	Port int
	// HTTPS tells whether the endpoint serves TLS.
	HTTPS bool
	// CACertPEM is the PEM certificate that signs the TLS endpoint's
	// certificate (nil for plain HTTP). It is valid for 127.0.0.1 and
	// example.com.
	CACertPEM []byte

	ts   *httptest.Server
	opts Options
	log  *slog.Logger

	ntlm ntlmVerifier

	mu       sync.Mutex
	shells   map[string]*shell
	stats    Stats
	recorded []Recorded
}

// New starts a plain HTTP endpoint on loopback.
func New(opts Options) *Server {
	return start(opts, false)
}

// NewTLS starts an HTTPS endpoint on loopback; CACertPEM holds the
// certificate clients must trust.
func NewTLS(opts Options) *Server {
	return start(opts, true)
}

func start(opts Options, useTLS bool) *Server {
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.MaxEnvelopeSize <= 0 {
		opts.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if opts.ReceiveTimeout <= 0 {
		opts.ReceiveTimeout = DefaultReceiveTimeout
	}
	if opts.Handler == nil {
		opts.Handler = HandlerFunc(notRecognized)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:   opts,
		log:    log,
		shells: make(map[string]*shell),
		stats:  Stats{Requests: make(map[string]int)},
		HTTPS:  useTLS,
	}
	s.ts = httptest.NewUnstartedServer(s)
	// TLS handshake failures of clients that reject the certificate are
	// expected in tests: log them at debug level, not on stderr.
	s.ts.Config.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	if useTLS {
		s.ts.StartTLS()
		s.CACertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
	} else {
		s.ts.Start()
	}
	host, port, _ := net.SplitHostPort(s.ts.Listener.Addr().String())
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	s.URL = s.ts.URL + "/wsman"
	return s
}

// Close stops the endpoint, terminating every running command.
func (s *Server) Close() {
	s.dropShells()
	s.ts.Close()
	s.dropShells() // commands started while closing
}

// CloseClientConnections closes every open client connection, as a
// network failure would.
func (s *Server) CloseClientConnections() {
	s.ts.CloseClientConnections()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	st.EnvVariables = slices.Clone(s.stats.EnvVariables)
	return st
}

// Commands returns every command received so far, in order.
func (s *Server) Commands() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.recorded))
	copy(out, s.recorded)
	return out
}

// OpenShells returns how many shells are open.
func (s *Server) OpenShells() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shells)
}

func notRecognized(_ context.Context, cmd *Command, _, stderr io.Writer) int {
	name, _, _ := strings.Cut(strings.TrimSpace(cmd.Line), " ")
	say(stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", name)
	return 1
}

// ServeHTTP answers one WS-Management request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Down != nil && s.opts.Down() {
		s.drop(w)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/wsman" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if !s.authenticate(w, r) {
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml") {
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	var body bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= int64(s.opts.MaxEnvelopeSize) {
		body.Grow(int(n) + bytes.MinRead)
	}
	if _, err := body.ReadFrom(io.LimitReader(r.Body, int64(s.opts.MaxEnvelopeSize)+1)); err != nil {
		return // the client went away
	}
	b := body.Bytes()
	s.mu.Lock()
	if len(b) > s.stats.MaxRequestBytes {
		s.stats.MaxRequestBytes = len(b)
	}
	s.mu.Unlock()
	if len(b) > s.opts.MaxEnvelopeSize {
		s.writeFault(w, fault("", "w:EncodingLimit", codeEnvelopeTooLarge,
			"The WS-Management service cannot process the request because the request packet is larger than MaxEnvelopeSize."))
		return
	}
	env, err := parseEnvelope(b)
	if err != nil {
		s.writeFault(w, fault("", "w:InvalidMessage", codeUnsupported, err.Error()))
		return
	}
	action := env.Header.Action
	short := action[strings.LastIndex(action, "/")+1:]
	s.log.Debug("wsman request", "action", short, "bytes", len(b))
	s.mu.Lock()
	s.stats.Requests[short]++
	s.mu.Unlock()

	switch action {
	case actionCreate:
		s.create(w, env)
	case actionCommand:
		s.command(r.Context(), w, env)
	case actionSend:
		s.send(w, env)
	case actionReceive:
		s.receive(r.Context(), w, env)
	case actionSignal:
		s.signal(w, env)
	case actionDelete:
		s.deleteShell(w, env)
	default:
		s.writeFault(w, fault(env.Header.MessageID, "w:ActionNotSupported", codeUnsupported,
			"The action is not supported by the service: "+action))
	}
}

// authenticate checks the request's credentials. When it returns false it
// has answered 401: a refusal, or the challenge of an NTLM handshake.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	header := r.Header.Get("Authorization")
	if s.opts.NTLM {
		if scheme, msg, ok := ntlmHeader(header); ok {
			switch ntlmType(msg) {
			case ntlmNegotiate:
				w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(s.ntlm.challenge()))
				w.WriteHeader(http.StatusUnauthorized)
				return false
			case ntlmAuthenticate:
				if s.ntlm.verify(msg, s.opts.User, s.opts.Password) {
					return true
				}
			}
		}
		s.refuse(w, header != "", "Negotiate", "NTLM")
		return false
	}
	u, p, ok := r.BasicAuth()
	if ok && subtle.ConstantTimeCompare([]byte(u), []byte(s.opts.User)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.opts.Password)) == 1 {
		return true
	}
	s.refuse(w, header != "", `Basic realm="WSMAN"`)
	return false
}

// refuse answers 401 offering schemes; presented tells whether the
// request carried credentials (then it counts as refused).
func (s *Server) refuse(w http.ResponseWriter, presented bool, schemes ...string) {
	if presented {
		s.mu.Lock()
		s.stats.Unauthorized++
		s.mu.Unlock()
	}
	for _, sc := range schemes {
		w.Header().Add("WWW-Authenticate", sc)
	}
	w.WriteHeader(http.StatusUnauthorized)
}

// drop closes the connection without an answer and forgets every shell,
// as a host going down does.
func (s *Server) drop(w http.ResponseWriter) {
	s.mu.Lock()
	s.stats.Dropped++
	s.mu.Unlock()
	s.dropShells()
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

func (s *Server) dropShells() {
	s.mu.Lock()
	shells := s.shells
	s.shells = make(map[string]*shell)
	s.mu.Unlock()
	for _, sh := range shells {
		sh.terminate()
	}
}

func (s *Server) write(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) writeOK(w http.ResponseWriter, b []byte) { s.write(w, http.StatusOK, b) }

// writeFault answers a fault with status 500, as Windows does.
func (s *Server) writeFault(w http.ResponseWriter, b []byte) {
	s.write(w, http.StatusInternalServerError, b)
}

func (s *Server) unknownShell(w http.ResponseWriter, env *envelope) {
	s.writeFault(w, fault(env.Header.MessageID, "w:InvalidSelectors", codeInvalidSelectors,
		"The request for the Windows Remote Shell with ShellId "+env.Header.selector("ShellId")+
			" failed because the shell was not found on the server."))
}

func (s *Server) lookup(env *envelope) *shell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shells[env.Header.selector("ShellId")]
}

func (s *Server) create(w http.ResponseWriter, env *envelope) {
	if env.Body.Shell == nil {
		s.writeFault(w, fault(env.Header.MessageID, "w:InvalidMessage", codeUnsupported, "missing rsp:Shell"))
		return
	}
	sh := &shell{id: strings.ToUpper(newID()), commands: make(map[string]*runningCommand)}
	s.mu.Lock()
	for _, v := range env.Body.Shell.Environment.Variables {
		s.stats.EnvVariables = append(s.stats.EnvVariables, v.Name+"="+v.Value)
	}
	s.shells[sh.id] = sh
	s.mu.Unlock()
	s.writeOK(w, createResponse(env.Header.MessageID, s.URL, sh.id))
}

// command starts a command. It outlives the request that started it: its
// context keeps the request's values, not its cancellation, and ends when
// the command is terminated or the server closes.
func (s *Server) command(reqCtx context.Context, w http.ResponseWriter, env *envelope) {
	sh := s.lookup(env)
	if sh == nil {
		s.unknownShell(w, env)
		return
	}
	cl := env.Body.CommandLine
	if cl == nil {
		s.writeFault(w, fault(env.Header.MessageID, "w:InvalidMessage", codeUnsupported, "missing rsp:CommandLine"))
		return
	}
	line := strings.TrimSpace(cl.Command)
	args := make([]string, len(cl.Arguments))
	for i, a := range cl.Arguments {
		args[i] = strings.TrimSpace(a)
	}
	script, err := decodeEncodedCommand(strings.Join(append([]string{line}, args...), " "))
	if err != nil {
		s.writeFault(w, fault(env.Header.MessageID, "w:InternalError", codeUnsupported, err.Error()))
		return
	}
	skip := false
	for _, o := range env.Header.OptionSet.Options {
		if o.Name == "WINRS_SKIP_CMD_SHELL" && strings.EqualFold(strings.TrimSpace(o.Value), "TRUE") {
			skip = true
		}
	}
	s.mu.Lock()
	s.recorded = append(s.recorded, Recorded{Line: line, Args: args, Script: script, SkipCmdShell: skip})
	s.mu.Unlock()

	// Close terminates every command through its shell.
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqCtx))
	rc := &runningCommand{
		id:      strings.ToUpper(newID()),
		cancel:  cancel,
		stdin:   newStdinPipe(),
		changed: make(chan struct{}),
	}
	if !sh.add(rc) {
		cancel()
		s.unknownShell(w, env)
		return
	}
	cmd := &Command{ShellID: sh.id, ID: rc.id, Line: line, Args: args, Script: script, SkipCmdShell: skip, Stdin: rc.stdin}
	go rc.run(ctx, s.opts.Handler, cmd)
	s.writeOK(w, commandResponse(env.Header.MessageID, rc.id))
}

func (s *Server) send(w http.ResponseWriter, env *envelope) {
	sh := s.lookup(env)
	if sh == nil || env.Body.Send == nil {
		s.unknownShell(w, env)
		return
	}
	for _, st := range env.Body.Send.Streams {
		rc := sh.get(st.CommandID)
		if rc == nil || st.Name != "stdin" {
			s.writeFault(w, fault(env.Header.MessageID, "w:InvalidParameter", codeUnsupported,
				"unknown command or stream"))
			return
		}
		data, err := decodeBase64(st.Data)
		if err != nil {
			s.writeFault(w, fault(env.Header.MessageID, "w:InvalidParameter", codeUnsupported,
				"stdin is not base64: "+err.Error()))
			return
		}
		s.mu.Lock()
		s.stats.StdinBytes += int64(len(data))
		s.mu.Unlock()
		// A command that ended or stopped reading closes its end of the
		// pipe; what it did not read is discarded, as on Windows.
		if len(data) > 0 {
			_, _ = rc.stdin.Write(data)
		}
		if strings.EqualFold(st.End, "true") {
			rc.stdin.CloseWrite()
		}
	}
	s.writeOK(w, sendResponse(env.Header.MessageID))
}

func (s *Server) receive(ctx context.Context, w http.ResponseWriter, env *envelope) {
	sh := s.lookup(env)
	if sh == nil || env.Body.Receive == nil {
		s.unknownShell(w, env)
		return
	}
	id := env.Body.Receive.DesiredStream.CommandID
	rc := sh.get(id)
	if rc == nil {
		s.writeFault(w, fault(env.Header.MessageID, "w:InvalidParameter", codeUnsupported, "unknown command "+id))
		return
	}
	wait := s.opts.ReceiveTimeout
	if d := env.Header.operationTimeout(); d > 0 && d < wait {
		wait = d
	}
	// Output travels base64-encoded: keep each answer well inside the
	// envelope size the client accepts.
	limit := s.opts.MaxEnvelopeSize
	if n, err := strconv.Atoi(strings.TrimSpace(env.Header.MaxEnvelopeSize)); err == nil && n > 0 && n < limit {
		limit = n
	}
	limit = max((limit-4096)*3/4, 1024)

	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		stdout, stderr, done, code, changed := rc.take(limit)
		if len(stdout) > 0 || len(stderr) > 0 || done {
			s.writeOK(w, receiveResponse(env.Header.MessageID, rc.id, stdout, stderr, done, code))
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			s.writeFault(w, timedOutFault(env.Header.MessageID))
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) signal(w http.ResponseWriter, env *envelope) {
	sh := s.lookup(env)
	if sh == nil || env.Body.Signal == nil {
		s.unknownShell(w, env)
		return
	}
	if rc := sh.get(env.Body.Signal.CommandID); rc != nil {
		switch strings.TrimSpace(env.Body.Signal.Code) {
		case signalTerminate, signalCtrlC, signalCtrlBreak:
			rc.terminate()
		}
	}
	s.writeOK(w, signalResponse(env.Header.MessageID))
}

func (s *Server) deleteShell(w http.ResponseWriter, env *envelope) {
	id := env.Header.selector("ShellId")
	s.mu.Lock()
	sh := s.shells[id]
	delete(s.shells, id)
	s.mu.Unlock()
	if sh == nil {
		s.unknownShell(w, env)
		return
	}
	sh.terminate()
	s.writeOK(w, deleteResponse(env.Header.MessageID))
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeBase64(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b)
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		return nil, fmt.Errorf("decode base64: %w", err)
	}
	return out[:n], nil
}
