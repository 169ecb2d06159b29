package manifest_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/packflow/packflow/manifest"
)

func ExampleParseBytes() {
	m, rep := manifest.ParseBytes([]byte(`<Manifest>
  <Metadata>
    <UUID>d1672b23-6157-11e5-9d63-60030891ee48</UUID>
    <Name>Install Script with License Key</Name>
    <Description>Install script for your license based agent</Description>
  </Metadata>
  <Parameters>
    <Parameter Name="LicenseKey" Type="String" Variable="LicenseKey" Prompt="Build"/>
    <Parameter Name="Server" Type="String" Variable="T3.Server.Name" Prompt="None"/>
  </Parameters>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>./install-agent.sh ${LicenseKey} ${T3.Server.Name}</Command>
  </Execution>
</Manifest>`))
	fmt.Println(rep.OK(), m.OS())
	for _, f := range m.Form() {
		fmt.Println(f.Variable, f.Type, f.Required)
	}
	// Output:
	// true linux
	// LicenseKey String true
}

func ExampleReport_Format() {
	_, rep := manifest.ParseBytes([]byte(`<Manifest>
  <Metadata><UUID>d1672b23-6157-11e5-9d63-60030891ee48</UUID><Name>x</Name><Description>d</Description></Metadata>
  <Execution>
    <Mode>Bash</Mode>
    <Command>./run.sh ${Port}</Command>
  </Execution>
</Manifest>`))
	_ = rep.Format(os.Stdout, "package.manifest")
	// Output:
	// package.manifest:4: error [execution.mode.unknown] /Manifest/Execution/Mode: <Mode> "Bash" is not known; use Ssh (Linux), Command or PowerShell (Windows)
	// package.manifest:5: error [execution.command.variable] /Manifest/Execution/Command: ${Port} is not a declared parameter; declare a <Parameter Variable="Port"> or fix the name
	// package.manifest: invalid: 2 errors, 0 warnings
}

func ExampleParameter_CheckValue() {
	p := manifest.Parameter{Variable: "Size", Type: manifest.TypeMultiSelect, Required: true,
		Options: []manifest.Option{{Name: "Small", Value: "s"}, {Name: "Large", Value: "l"}}}
	fmt.Println(p.CheckValue("s,l"))
	fmt.Println(p.CheckValue("s,xl"))
	fmt.Println(p.CheckValue(""))
	// Output:
	// <nil>
	// Size: invalid value: "xl" is not one of the options (s, l); join choices with commas
	// Size: missing: a value is required
}

func ExampleParseConstraint() {
	c, _ := manifest.ParseConstraint(">=1.2.0 <2.0.0")
	for _, s := range []string{"1.1.9", "1.4.2", "2.0.0"} {
		v, _ := manifest.ParseVersion(s)
		fmt.Println(s, c.Allows(v))
	}
	// Output:
	// 1.1.9 false
	// 1.4.2 true
	// 2.0.0 false
}

func ExampleCheckArchive() {
	dir, _ := os.MkdirTemp("", "pkg")
	defer func() { _ = os.RemoveAll(dir) }()
	_ = os.WriteFile(dir+"/package.manifest", []byte(`<Manifest>
  <Metadata><UUID>d1672b23-6157-11e5-9d63-60030891ee48</UUID><Name>x</Name><Description>d</Description></Metadata>
  <Execution><Mode>Ssh</Mode><Command>./run.sh</Command></Execution>
</Manifest>`), 0o644)
	_ = os.WriteFile(dir+"/run.sh", []byte("#!/bin/sh\n"), 0o755)
	var zip strings.Builder
	if err := manifest.Pack(context.Background(), dir, &zip); err != nil {
		fmt.Println(err)
		return
	}
	pkg, rep, err := manifest.CheckArchive(context.Background(), strings.NewReader(zip.String()), int64(zip.Len()), manifest.Limits{})
	fmt.Println(err, rep.OK(), len(pkg.Files), pkg.Manifest.Execution.Mode)
	// Output:
	// <nil> true 2 Ssh
}
