// Package manifest owns the package format: it parses and validates
// package.manifest into typed structs, checks package archives (and
// unpacked package directories) for safety, extracts archives safely, packs
// directories into correct archives, checks parameter values at deployment
// time, and parses versions and version constraints. It ships the XML
// Schema of the manifest (Schema) with packflow's extensions.
//
// Every problem found is reported, not only the first, as a Problem with a
// location (Path, Line), a stable Rule identifier and a Message that says
// how to fix it. Reports separate errors (the package is invalid) from
// warnings. Functions return validation problems in a Report and keep
// errors for I/O and cancellation, so callers retry errors but never
// invalid packages; Report.Err wraps ErrInvalid.
//
// The entry points:
//
//	ParseBytes / Parse       a manifest on its own
//	CheckArchive             a .zip: archive rules, manifest rules, sha256
//	CheckDir                 an unpacked package directory, same rules
//	Validate                 a .zip or a directory (packflow validate)
//	Report.Format            a report for a terminal
//	Extract                  unpack a .zip, re-applying the archive rules
//	Pack / PackFile          zip a directory: manifest first, modes kept
//	Schema                   the XSD (served at /api/v1/schema/…)
//	ParseCommand, Program    a command's ${Variable} segments, its file
//	CheckCache               one check per unchanging archive (previews)
//	Parameter.CheckValue     a deployment value against its parameter
//	MatchRegex               a value against a parameter's Regex (.NET)
//	Manifest.Form            the fields a deployment asks for
//	ParseVersion, ParseConstraint
//
// # Manifest format
//
// The format is that of the original Blueprint packages (both editions),
// plus optional extensions:
//
//	<Manifest>
//	  <Metadata>
//	    <UUID>…</UUID> <Name>…</Name> <Description>…</Description>
//	    <Version>1.2.0</Version>                          (extension)
//	    <Requires>                                        (extension)
//	      <Package UUID="…" Version="^1.2" Name="…"/>
//	    </Requires>
//	    <Schedules>                                       (extension)
//	      <Schedule Name="nightly" Cron="0 2 * * *"/>
//	      <Schedule Name="often" Every="6h"/>
//	    </Schedules>
//	  </Metadata>
//	  <Parameters>
//	    <Parameter Name= Type= Variable= Hint= Default= Prompt= Global= Required= Regex=>
//	      <Option Name= Value=/>
//	    </Parameter>
//	  </Parameters>
//	  <Execution>
//	    <Mode>Ssh|Command|PowerShell</Mode>
//	    <Command>./install.sh ${Variable}</Command>
//	    <Persistent>false</Persistent> <RebootOnSuccess>false</RebootOnSuccess>
//	    <Timeout>30m</Timeout>                            (extension)
//	  </Execution>
//	</Manifest>
//
// # Executable bits
//
// Linux scripts need the executable bit, which zips made on Windows do not
// carry. An Ssh package whose command file lacks the bit gets the warning
// archive.executable.mode, and the executor sets the bit (chmod 755) on
// that file after uploading it and before running it.
//
// # Choices where the format is vague
//
//   - Prompt accepts true, false (first edition) and None, Build, Design,
//     Global (later edition), in any case. true means Build and false means
//     None. When Prompt is absent a parameter is prompted at deployment
//     (Build), as the first edition's default "true" said and as old
//     manifests rely on; system parameters (T3.*) are never prompted when
//     Prompt is absent. The later edition's default "None" would silently
//     hide parameters of first-edition manifests, so it was not taken.
//   - Prompt="Global" is treated as Build plus Global="true": asked once per
//     deployment and shared by every package declaring the Variable.
//   - System variables are matched ignoring case; declaring one as prompted
//     (true, Build, Design or Global) is an error.
//   - Parameter Name is required even for parameters that are not prompted
//     (both editions list it as required).
//   - Description is required and must not be blank.
//   - Name has its whitespace collapsed before its 1–100 characters are
//     counted (as the XSD's token type does).
//   - Values of enumerations and booleans (Type, Prompt, Mode, Global,
//     Required, Persistent, RebootOnSuccess) are matched ignoring case and
//     surrounding whitespace; booleans are xs:boolean's true, false, 1 and
//     0, as the original's schema typed them. Element and
//     attribute names are case-sensitive (an unknown name is a warning that
//     suggests the right spelling).
//   - UUID is a GUID in any form .NET's Guid.Parse reads (the original
//     parsed it so): 8-4-4-4-12 hex digits, 32 digits, either of them in
//     braces or parentheses, or {0x…,0x…,0x…,{0x…,…}}, in any case, with
//     surrounding whitespace; it is stored as 8-4-4-4-12 in lower case.
//   - Variable is case-sensitive, both for uniqueness and in ${Variable}
//     references (an undeclared reference that differs only in case gets a
//     hint). A Default must be a valid value of the parameter (options,
//     regex, type). An empty (or blank) Default means no default, with the
//     warning parameter.default.empty: the original's schema typed Default
//     as a plain string and published such manifests.
//   - Regex is a .NET regular expression, as on the original platform
//     (lookaround, backreferences and atomic groups included; a pattern .NET
//     refuses is refused), matched unanchored like Regex.IsMatch (anchor
//     with ^…$ to match whole values), and each match is bounded by
//     RegexTimeout. MatchRegex is the one check every caller uses.
//   - T3.* variables other than the system variables, declared with
//     Prompt none and no Default (T3.BuildServerTask.GroupID and
//     T3.BuildServerTask.Network in real manifests), were filled in by the
//     original platform. packflow publishes them with the warning
//     parameter.platform.unknown naming each, shows them on the form, and
//     takes their value from the deployment's parameters; a deployment
//     without one is refused as missing. The system variables it fills are
//     T3.Identity.User, T3.Identity.Account, T3.Server.Name,
//     T3.Server.IPAddress, T3.Server.Password and T3.Datacenter.
//   - Warnings authors need: two parameters sharing a Name (the form's
//     label) are parameter.name.duplicate; Mode Command running a .ps1 file
//     (cmd.exe does not run it as PowerShell) is execution.command.shell.
//   - A package.manifest that is not XML at all (JSON, JavaScript, "key:
//     value" or plain text: other platforms use the same file name) gets one
//     error, manifest.format, saying what the file is; the archive's
//     executable rule is then not applied, so nothing buries it.
//   - A Network value is checked here as a CIDR prefix (or single address);
//     at deployment it may instead name one of the account's networks
//     (recorded per datacenter), which the command receives as given.
//   - MultiSelect values are option values joined by commas, so option
//     values of a MultiSelect cannot contain commas.
//   - The command's first word names a file of the package when it has a
//     directory part ("./x.sh", "/dir/my.cmd", "bin\setup.exe") or a script
//     extension (.sh .ps1 .cmd .bat .py .pl .rb .vbs .js .msi); such a file
//     must be in the archive. A leading "/" means the package root, except
//     /bin/, /sbin/, /usr/, /opt/ and /etc/ on Ssh packages, which name the
//     server's programs. Bare names and bare .exe names (bash, msiexec.exe)
//     may be the server's programs and are not checked. Windows packages
//     match the file ignoring case. A PowerShell "& " or ". " prefix is
//     skipped.
//   - Duplicate archive names are compared ignoring case for Windows
//     packages (Command and PowerShell modes) and exactly for Linux ones; a
//     name that is both a file and a folder is a duplicate too.
//   - An executable is a .exe, .cmd, .bat or .ps1 file for Windows packages
//     and a .sh file or a file with an execute bit for Linux packages.
//   - The compression ratio limit applies once an entry has produced more
//     than Limits.RatioMinSize bytes (1 MiB by default): small files of
//     zeros compress far beyond 200:1 without being bombs. The compressed
//     size an entry can consume is bounded by the archive's size, so a
//     header cannot hide a bomb.
//   - Unknown elements and attributes are warnings for packflow, which stays
//     lenient so newer manifests publish on older servers; the XSD is strict
//     and rejects them, so authors catch typos early. Namespaced attributes
//     (xmlns, xsi:…) are ignored.
//   - Timeout is a Go duration ("90s", "1h30m") greater than zero; absent
//     means the platform's configured default. Schedules use a cron
//     expression or an Every duration of at least one minute, never both,
//     checked by the scheduler's own checker (scheduler/spec), so that a
//     schedule a manifest declares is one the scheduler fires: days of the
//     week are 0-6 ("7" is refused), and an expression that never fires
//     ("0 0 31 2 *") is refused. scheduler/spec imports nothing of
//     packflow's, so manifest still depends on no package that could
//     depend on it; a test keeps it that way.
//   - Requires constraints follow npm's syntax (see ParseConstraint); a
//     package may not require itself or the same package twice.
//   - The manifest is at most 1 MiB, 5,000 elements nested at most 32
//     deep, 64 attributes on one element and 10,000 in all
//     (manifest.limits); parsing is linear in its input and stops soon
//     after its context ends. UTF-16 manifests and other declared
//     encodings are refused with a message asking for UTF-8.
//   - An archive's entries are counted from its end of central directory
//     record (and then its directory headers, without keeping them) before
//     archive/zip reads the directory, so too many entries cost no memory.
package manifest
