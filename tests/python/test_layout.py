"""The ctypes declarations mirror lib/shadowcopy.h: every structure's
size and every field's offset and size as the C compiler lays them out,
every public function declared, every constant the same."""
import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from shadowcopy import _lib, volume
import shadowcopy

SRCDIR = os.environ.get("abs_top_srcdir",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
HEADER = os.path.join(SRCDIR, "lib", "shadowcopy.h")


def header_text():
    with open(HEADER) as f:
        return f.read()


@unittest.skipUnless(shutil.which("cc"), "no C compiler")
class Layout(unittest.TestCase):
    def c_layout(self):
        """{(struct, field or ''): (offset, size)} from the compiler."""
        lines = []
        for cname, cls in _lib.STRUCTS.items():
            lines.append('  printf ("%s - 0 %%zu\\n", sizeof (struct %s));'
                         % (cname, cname))
            for fname, _ in cls._fields_:
                lines.append(
                    '  printf ("%s %s %%zu %%zu\\n", offsetof (struct %s, %s),'
                    ' sizeof (((struct %s *) 0)->%s));'
                    % (cname, fname, cname, fname, cname, fname))
        src = ("#include <stddef.h>\n#include <stdio.h>\n"
               "#include \"shadowcopy.h\"\nint main (void) {\n%s\n"
               "  return 0;\n}\n" % "\n".join(lines))
        with tempfile.TemporaryDirectory() as d:
            c, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
            with open(c, "w") as f:
                f.write(src)
            subprocess.run(["cc", "-Wall", "-Werror", "-I",
                            os.path.dirname(HEADER), "-o", exe, c], check=True)
            out = subprocess.run([exe], check=True, capture_output=True,
                                 text=True).stdout
        layout = {}
        for line in out.splitlines():
            s, f, off, size = line.split()
            layout[(s, "" if f == "-" else f)] = (int(off), int(size))
        return layout

    def test_every_structure_and_field_as_the_compiler_lays_it_out(self):
        layout = self.c_layout()
        for cname, cls in _lib.STRUCTS.items():
            with self.subTest(struct=cname):
                self.assertEqual(ctypes.sizeof(cls), layout[(cname, "")][1])
                for fname, _ in cls._fields_:
                    d = getattr(cls, fname)
                    self.assertEqual((d.offset, d.size),
                                     layout[(cname, fname)],
                                     "%s.%s" % (cname, fname))

    def test_every_structure_of_the_header_is_declared(self):
        # A struct with fields (not the opaque handles).
        structs = set(re.findall(r"^struct (shadowcopy_\w+) \{",
                                 header_text(), re.M))
        self.assertEqual(structs, set(_lib.STRUCTS))


class Functions(unittest.TestCase):
    def test_every_function_of_the_header_is_declared(self):
        text = re.sub(r"/\*.*?\*/", "", header_text(), flags=re.S)
        declared = set(re.findall(r"\b(shadowcopy_\w+)\s*\(", text))
        declared -= {"shadowcopy_field_fn", "shadowcopy_deleted_fn",
                     "shadowcopy_extent_fn", "shadowcopy_line_fn",
                     "shadowcopy_notify_fn", "shadowcopy_writer_result_fn"}
        self.assertEqual(declared, set(_lib.PROTOTYPES))

    def test_the_library_exports_every_function_of_the_header(self):
        missing = [f for f in sorted(_lib.PROTOTYPES) if not _lib.has(f)]
        self.assertEqual(missing, [], "%s lacks them" % _lib.cdll._name)

    def test_constants_are_the_headers(self):
        text = header_text()
        for name, value in (("SHADOWCOPY_NAME_MAX", shadowcopy.NAME_MAX),
                            ("SHADOWCOPY_UUID_LEN", _lib.UUID_LEN),
                            ("SHADOWCOPY_PROTOCOL_MAJOR",
                             shadowcopy.PROTOCOL_MAJOR),
                            ("SHADOWCOPY_PROTOCOL_MINOR",
                             shadowcopy.PROTOCOL_MINOR),
                            ("SHADOWCOPY_OPEN_SERVER", volume._OFFLINE[None]),
                            ("SHADOWCOPY_OPEN_READ", volume._OFFLINE["read"]),
                            ("SHADOWCOPY_OPEN_WRITE",
                             volume._OFFLINE["write"]),
                            ("SHADOWCOPY_DELETE_KEEP_CHECKPOINT",
                             volume.DELETE_KEEP_CHECKPOINT),
                            ("SHADOWCOPY_DELETE_WITH_CLONES",
                             volume.DELETE_WITH_CLONES)):
            m = re.search(r"#define %s\s+(\d+)" % name, text)
            self.assertIsNotNone(m, name)
            self.assertEqual(int(m.group(1)), value, name)
        self.assertRegex(text, r"#define SHADOWCOPY_RATE_UNBOUNDED\s+UINT64_MAX")
        self.assertEqual(shadowcopy.RATE_UNBOUNDED, 2**64 - 1)
        self.assertEqual(int(re.search(
            r"#define SHADOWCOPY_SET_VOLUMES_MAX\s+(\d+)", text).group(1)),
            shadowcopy.VOLUMES_MAX)
        self.assertEqual(re.search(r'#define SHADOWCOPY_WRITERS_DIR\s+"(.*)"',
                                   text).group(1), shadowcopy.WRITERS_DIR)


if __name__ == "__main__":
    unittest.main()
