//! VMware guest integration: hypervisor detection and the backdoor RPCI channel.
