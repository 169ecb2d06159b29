package manifest

// Rule identifiers. They are part of the API: clients and tests match on
// them, so they never change meaning once released. Each names the part of
// the package and what is wrong with it.
const (
	// The manifest file as a whole.
	RuleManifestEncoding         = "manifest.encoding"          // not UTF-8
	RuleManifestSize             = "manifest.size"              // larger than MaxManifestSize
	RuleManifestSyntax           = "manifest.syntax"            // not well-formed XML
	RuleManifestRoot             = "manifest.root"              // root element is not <Manifest>
	RuleManifestFormat           = "manifest.format"            // a JSON, JavaScript or text file, not a Blueprint manifest
	RuleManifestLimits           = "manifest.limits"            // too many elements or attributes, nested too deep
	RuleManifestElementUnknown   = "manifest.element.unknown"   // warning
	RuleManifestAttributeUnknown = "manifest.attribute.unknown" // warning
	RuleManifestElementDuplicate = "manifest.element.duplicate"
	RuleManifestElementMissing   = "manifest.element.missing" // Metadata or Execution absent

	// Metadata.
	RuleUUIDMissing        = "metadata.uuid.missing"
	RuleUUIDFormat         = "metadata.uuid.format"
	RuleNameMissing        = "metadata.name.missing"
	RuleNameLength         = "metadata.name.length"
	RuleDescriptionMissing = "metadata.description.missing"
	RuleVersionFormat      = "metadata.version.format"
	RuleRequiresUUID       = "metadata.requires.uuid"
	RuleRequiresVersion    = "metadata.requires.version"
	RuleRequiresDuplicate  = "metadata.requires.duplicate"
	RuleRequiresSelf       = "metadata.requires.self"
	RuleScheduleName       = "metadata.schedule.name"
	RuleScheduleNameDup    = "metadata.schedule.duplicate"
	RuleScheduleSpec       = "metadata.schedule.spec" // neither or both of Cron and Every
	RuleScheduleCron       = "metadata.schedule.cron"
	RuleScheduleEvery      = "metadata.schedule.every"
	RuleScheduleEveryRange = "metadata.schedule.every.range"

	// Parameters.
	RuleParamNameMissing       = "parameter.name.missing"
	RuleParamTypeMissing       = "parameter.type.missing"
	RuleParamTypeUnknown       = "parameter.type.unknown"
	RuleParamVariableMissing   = "parameter.variable.missing"
	RuleParamVariableFormat    = "parameter.variable.format"
	RuleParamVariableDuplicate = "parameter.variable.duplicate"
	RuleParamDefaultEmpty      = "parameter.default.empty" // warning: Default="" means no default
	RuleParamDefaultInvalid    = "parameter.default.invalid"
	RuleParamPrompt            = "parameter.prompt.value"
	RuleParamGlobal            = "parameter.global.value"
	RuleParamRequired          = "parameter.required.value"
	RuleParamRegexSyntax       = "parameter.regex.syntax"
	RuleParamRegexUnsupported  = "parameter.regex.unsupported" // no longer reported: Regex is .NET's, lookaround included
	RuleParamRegexIgnored      = "parameter.regex.ignored"     // warning: Regex on a non-String type
	RuleParamOptionMissing     = "parameter.option.missing"    // Option/MultiSelect without <Option>
	RuleParamOptionName        = "parameter.option.name"
	RuleParamOptionValue       = "parameter.option.value"
	RuleParamOptionDuplicate   = "parameter.option.duplicate"
	RuleParamOptionComma       = "parameter.option.comma"   // MultiSelect value holding a comma
	RuleParamOptionIgnored     = "parameter.option.ignored" // warning: <Option> on another type
	RuleParamSystemPrompted    = "parameter.system.prompted"
	RuleParamNameDuplicate     = "parameter.name.duplicate"   // warning: two parameters share a Name (form label)
	RuleParamPlatformUnknown   = "parameter.platform.unknown" // warning: a T3.* variable packflow does not fill in

	// Execution.
	RuleModeMissing     = "execution.mode.missing"
	RuleModeUnknown     = "execution.mode.unknown"
	RuleCommandMissing  = "execution.command.missing"
	RuleCommandUnclosed = "execution.command.unclosed"
	RuleCommandVariable = "execution.command.variable" // ${X} not declared
	RuleCommandFile     = "execution.command.file"     // first word names a file not in the archive
	RuleCommandShell    = "execution.command.shell"    // warning: Mode Command running a .ps1 file
	RulePersistent      = "execution.persistent.value"
	RuleRebootOnSuccess = "execution.rebootonsuccess.value"
	RuleTimeoutFormat   = "execution.timeout.format"
	RuleTimeoutRange    = "execution.timeout.range"

	// The archive.
	RuleArchiveFormat        = "archive.format" // not a readable zip
	RuleArchiveSize          = "archive.size"
	RuleArchiveEntries       = "archive.entries"
	RuleArchiveUncompressed  = "archive.uncompressed"
	RuleArchiveRatio         = "archive.entry.ratio"
	RuleArchiveCorrupt       = "archive.entry.corrupt" // checksum or length mismatch
	RuleArchiveUnsupported   = "archive.entry.unsupported"
	RuleArchiveSymlink       = "archive.entry.symlink"
	RuleArchiveSpecial       = "archive.entry.special" // device, pipe, socket
	RulePathAbsolute         = "archive.path.absolute"
	RulePathDrive            = "archive.path.drive"
	RulePathTraversal        = "archive.path.traversal"
	RulePathInvalid          = "archive.path.invalid" // empty, NUL, not UTF-8
	RulePathDuplicate        = "archive.path.duplicate"
	RuleManifestMissing      = "archive.manifest.missing"
	RuleManifestNested       = "archive.manifest.nested"
	RuleExecutableMissing    = "archive.executable.missing"
	RuleExecutableBitMissing = "archive.executable.mode" // warning: Ssh command file not executable
)
