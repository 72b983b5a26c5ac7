//! Kernel settings (sysctls): the appliance defaults, hardening and overrides.
