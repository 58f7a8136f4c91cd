# An unknown WhatsApp key, as in the field report where `channels.whatsapp.streamMode` crashed the
# gateway at start. Here it must fail the build instead (vm-tests/bad-config.nix, tests/nix_*.rs).
_: {
  services.openclaw.settings.channels.whatsapp.streamMode = "partial";
}
