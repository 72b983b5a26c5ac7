//! The OVF environment reaches the guest through each transport QEMU can
//! offer (fw_cfg as in our tests, an "OVF ENV" ISO as vSphere's iso
//! transport does), and the console lists every value with its source.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qemu_tests::image::built_image;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::READY_LINE;

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// A vCenter-shaped environment document, as vSphere writes it.
fn environment(hostname: &str, priority: u8) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id="" ve:vCenterId="vm-94765">
   <PlatformSection>
      <Kind>VMware ESXi</Kind><Version>8.0.3</Version>
      <Vendor>VMware, Inc.</Vendor><Locale>en_US</Locale>
   </PlatformSection>
   <PropertySection>
         <Property oe:key="appliance.hostname" oe:value="{hostname}"/>
         <Property oe:key="appliance.vrrp.priority" oe:value="{priority}"/>
         <Property oe:key="appliance.network.slaac" oe:value="False"/>
         <Property oe:key="appliance.admin.password" oe:value="s3cret-pass"/>
         <Property oe:key="appliance.network.mtu" oe:value="99999"/>
   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:99:c0:4c" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>
"#
    )
}

fn check_console(vm: &Vm, hostname: &str, transport: &str) {
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    for expected in [
        format!("OVF environment from {transport}"),
        format!("hostname = {hostname} (ovf-env)"),
        "vrrp.priority = 150 (ovf-env)".to_string(),
        "network.slaac = False (ovf-env)".to_string(),
        // The bad value is reported with key, value and source; the default stays.
        "network.mtu = 1500 (default)".to_string(),
        "network.mtu".to_string(),
    ] {
        assert!(
            console.contains(&expected),
            "console lacks {expected:?}:\n{console}"
        );
    }
    assert!(
        console.lines().any(|l| l.contains("error: setting")
            && l.contains("network.mtu")
            && l.contains("99999")),
        "bad MTU not reported with its value:\n{console}"
    );
    assert!(
        !console.contains("s3cret-pass"),
        "the password reached the console:\n{console}"
    );
}

#[test]
fn ovf_environment_from_fw_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("ovf-env.xml");
    std::fs::write(&env, environment("lb-fwcfg", 150)).unwrap();
    let opts = VmOptions {
        fw_cfg: vec![("opt/appliance/ovf-env.xml".into(), env)],
        ..VmOptions::default()
    };
    let vm = Vm::start("fw_cfg", &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    check_console(&vm, "lb-fwcfg", "QEMU fw_cfg");
}

#[test]
fn ovf_environment_from_iso() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("iso");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("ovf-env.xml"), environment("lb-iso", 150)).unwrap();
    let iso = dir.path().join("ovf-env.iso");
    make_iso(&content, &iso);
    let opts = VmOptions {
        cdrom: Some(iso),
        ..VmOptions::default()
    };
    let vm = Vm::start("iso", &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    check_console(&vm, "lb-iso", "CD /dev/sr0");
}

/// An ISO 9660 image labelled "OVF ENV", as vSphere's iso transport makes.
fn make_iso(content: &Path, iso: &Path) {
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "OVF ENV", "-o"])
        .arg(iso)
        .arg(content)
        .output()
        .unwrap_or_else(|e| panic!("xorriso: {e} (apt-get install xorriso)"));
    assert!(
        out.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
