#!/bin/sh
# The ACPI tables through ACPICA's own tools: build them for a few CPU
# counts, dump them as SIG.dat files, decompile each with `iasl -d` (no
# errors, no warnings, no bad checksums, the expected entries) and, where
# acpiexec is installed, load them into ACPICA's namespace as Linux does
# and evaluate \_S5 and the PCI root's _CRS.
#   usage: tests/acpi/run.sh [TEST_ACPI]   (default build/tests/test_acpi)
#   or:    ACPI_VMM=build/vmm ACPI_KERNEL=build/guests/hello.elf tests/acpi/run.sh
#          (the tables the VMM really builds, via its --dump-acpi option;
#           the guest runs to its end, which for hello.elf is status 1)
# Without iasl it prints a SKIPPED banner and passes, unless
# ACPI_REQUIRE_IASL=1 (CI installs acpica-tools and sets it).
set -u
BIN=${1:-build/tests/test_acpi}
CPUS=${ACPI_CPUS:-"1 2 64"}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

if ! command -v iasl >/dev/null 2>&1; then
	echo "########################################################"
	echo "###  SKIPPED: iasl not found (apt install acpica-tools) ###"
	echo "###  the ACPI tables were NOT checked with ACPICA       ###"
	echo "########################################################"
	[ "${ACPI_REQUIRE_IASL:-0}" = 1 ] && exit 1
	exit 0
fi

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# has FILE COUNT REGEX WHAT: REGEX matches exactly COUNT lines of FILE.
has() {
	got=$(grep -Eci -- "$3" "$1")
	[ "$got" -eq "$2" ] || fail "$4: $got matches of '$3' in $(basename "$1"), want $2"
}

# decompile DIR SIG: iasl -d must run clean and leave SIG.dsl.
decompile() {
	(cd "$1" && iasl -d "$2.dat") >"$1/$2.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || [ ! -s "$1/$2.dsl" ]; then
		fail "iasl -d $2.dat: status $rc"
		sed 's/^/    /' "$1/$2.log" | tail -5
		return 1
	fi
	if grep -Eqi 'incorrect|invalid|unknown|error|warning|mismatch' "$1/$2.log" "$1/$2.dsl"; then
		fail "iasl -d $2.dat complains:"
		grep -Ehi 'incorrect|invalid|unknown|error|warning|mismatch' "$1/$2.log" "$1/$2.dsl" |
			sed 's/^/    /' | head -5
		return 1
	fi
	return 0
}

for n in $CPUS; do
	dir=$TMP/cpus$n
	if [ -n "${ACPI_VMM:-}" ]; then
		"$ACPI_VMM" --kernel "$ACPI_KERNEL" --cpus "$n" --mem 64M --dump-acpi "$dir" \
			</dev/null >"$TMP/vmm$n.log" 2>&1
		if [ ! -s "$dir/APIC.dat" ]; then
			fail "$ACPI_VMM --dump-acpi $dir --cpus $n wrote no tables"
			sed 's/^/    /' "$TMP/vmm$n.log" | tail -5
			continue
		fi
	elif ! "$BIN" --dump-acpi "$dir" "$n"; then
		fail "$BIN --dump-acpi $dir $n"
		continue
	fi
	for sig in RSDT XSDT FACP APIC DSDT FACS; do
		[ -s "$dir/$sig.dat" ] || { fail "$n CPUs: no $sig.dat"; continue; }
		decompile "$dir" "$sig"
	done

	# Older iasl cannot read a standalone RSDP; test_acpi checks it then.
	if (cd "$dir" && iasl -d RSDP.dat) >"$dir/RSDP.log" 2>&1 && [ -s "$dir/RSDP.dsl" ]; then
		has "$dir/RSDP.dsl" 1 'Signature *: *"RSD PTR "' "RSDP"
		grep -Eqi 'incorrect|invalid' "$dir/RSDP.dsl" && fail "RSDP checksum"
	else
		echo "note: this iasl cannot decompile a standalone RSDP (test_acpi checks it)"
	fi

	has "$dir/XSDT.dsl" 2 'ACPI Table Address' "XSDT entries"
	has "$dir/RSDT.dsl" 2 'ACPI Table Address' "RSDT entries"
	has "$dir/APIC.dsl" "$n" 'Subtable Type *: *00 \[Processor Local APIC\]' "MADT"
	has "$dir/APIC.dsl" 1 'Subtable Type *: *01 \[I/O APIC\]' "MADT"
	has "$dir/APIC.dsl" 2 'Subtable Type *: *02 \[Interrupt Source Override\]' "MADT"
	has "$dir/APIC.dsl" 1 'Subtable Type *: *04 \[Local APIC NMI\]' "MADT"
	has "$dir/APIC.dsl" 1 'Address *: *FEC00000' "MADT IOAPIC address"
	has "$dir/APIC.dsl" 1 'PC-AT Compatibility *: *1' "MADT flags"
	has "$dir/APIC.dsl" 1 'Trigger Mode *: *3' "MADT SCI override: level"
	has "$dir/APIC.dsl" 1 'Polarity *: *1' "MADT SCI override: active high"
	has "$dir/FACP.dsl" 1 'SCI Interrupt *: *0009' "FADT"
	has "$dir/FACP.dsl" 1 'SMI Command Port *: *00000000' "FADT"
	has "$dir/FACP.dsl" 1 'PM1A Event Block Address *: *00000600' "FADT"
	has "$dir/FACP.dsl" 1 'PM1A Control Block Address *: *00000604' "FADT"
	has "$dir/FACP.dsl" 1 'PM Timer Block Address *: *00000608' "FADT"
	has "$dir/FACP.dsl" 1 'Reset Register Supported.*: *1' "FADT"
	has "$dir/FACP.dsl" 1 'Address *: *0000000000000CF9' "FADT reset register"
	has "$dir/FACP.dsl" 1 'Value to cause reset *: *06' "FADT"
	has "$dir/FACP.dsl" 1 'Hardware Reduced.*: *0' "FADT"
	has "$dir/FACS.dsl" 1 'Signature *: *"FACS"' "FACS"
	has "$dir/DSDT.dsl" 1 'Name \(\\?_S5, Package' "DSDT"
	has "$dir/DSDT.dsl" 1 'EisaId \("PNP0A03"\)' "DSDT"
	has "$dir/DSDT.dsl" 1 'EisaId \("PNP0501"\)' "DSDT"
	has "$dir/DSDT.dsl" 1 'Device \(PCI0\)' "DSDT"

	# ACPICA loads the tables as a kernel would: table and AML parsing
	# complaints are failures; the self-tests acpiexec runs on absent
	# hardware (GPEs, PM2) print "Unexpected" lines and are ignored.
	if command -v acpiexec >/dev/null 2>&1; then
		(cd "$dir" && timeout 120 acpiexec -b 'evaluate \_S5; evaluate \_SB.PCI0._CRS' \
			DSDT.dat FACP.dat APIC.dat FACS.dat) >"$dir/exec.log" 2>&1
		if grep -Eqi 'firmware (warning|error)|acpi (warning|error|exception)|segmentation|abort' \
			"$dir/exec.log"; then
			fail "$n CPUs: acpiexec complains:"
			grep -Ei 'firmware|acpi (warning|error|exception)|segmentation|abort' "$dir/exec.log" |
				sed 's/^/    /' | head -5
		fi
		has "$dir/exec.log" 1 'Evaluation of \\_S5 returned' "acpiexec _S5"
		has "$dir/exec.log" 2 '\[Integer\] = 0000000000000005' "acpiexec _S5 SLP_TYP"
		has "$dir/exec.log" 1 'Evaluation of \\_SB.PCI0._CRS returned' "acpiexec _CRS"
	else
		echo "note: acpiexec not found, tables not loaded into ACPICA"
	fi
	echo "checked: $n CPUs"
done

if [ "$fails" -ne 0 ]; then
	echo "acpi: $fails failure(s)"
	exit 1
fi
echo "acpi: all checks passed"
