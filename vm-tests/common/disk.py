# Boots the test VM from a copy-on-write overlay of the built disk image, 12 GiB large so that
# systemd-repart has room to create and grow the state partition on the first boot.
import os
import subprocess
import tempfile


def use_disk_image(qemu_img, image_file, size="12G"):
    overlay = tempfile.NamedTemporaryFile(suffix=".qcow2", delete=False)
    subprocess.run([qemu_img, "create", "-f", "qcow2", "-b", image_file, "-F", "raw", overlay.name, size], check=True)
    os.environ["NIX_DISK_IMAGE"] = overlay.name
    return overlay.name
