#!/usr/bin/env python3
"""Writes the document samples: PDFs (classic xref table and PDF 1.5 xref stream), minimal but
valid DOCX/XLSX/PPTX packages, Markdown and plain text. Standard library only."""
import zipfile
import zlib

def pdf_classic(path):
    """A one-page PDF 1.4 with a Helvetica text line, an Info dictionary and a classic xref."""
    content = b"BT /F1 24 Tf 72 720 Td (aigc-mark sample document) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Title (Sample) /Producer (aigc-mark samples) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    open(path, "wb").write(out)

def pdf_xref_stream(path):
    """A PDF 1.5 whose cross-reference is a compressed xref stream, with no Info dictionary."""
    content = zlib.compress(b"BT /F1 18 Tf 72 700 Td (xref stream sample) Tj ET")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref_off = len(out)
    n = len(objs) + 2  # objects 0..5 plus the xref stream itself (6)
    rows = bytearray(b"\x00\x00\x00\x00\xff\xff")
    for off in offsets + [xref_off]:
        rows += b"\x01" + off.to_bytes(4, "big") + b"\x00"
    data = zlib.compress(bytes(rows))
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 1] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n"
            % (n - 1, n, len(data))) + data + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_off
    open(path, "wb").write(out)

CT_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
RELS_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
CORE = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<dc:title>Sample</dc:title><dc:creator>aigc-mark samples</dc:creator></cp:coreProperties>')
CUSTOM = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
          'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Department"><vt:lpwstr>Research</vt:lpwstr></property></Properties>')

def ooxml(path, main_part, main_type, main_xml, extra_parts, with_custom=False):
    ct = CT_HEAD + f'<Override PartName="/{main_part}" ContentType="{main_type}"/>'
    ct += '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    for name, ctype, _ in extra_parts:
        ct += f'<Override PartName="/{name}" ContentType="{ctype}"/>'
    rels = RELS_HEAD + f'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{main_part}"/>'
    rels += '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    if with_custom:
        ct += '<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>'
        rels += '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="docProps/custom.xml"/>'
    ct += "</Types>"
    rels += "</Relationships>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("[Content_Types].xml", ct), ("_rels/.rels", rels), (main_part, main_xml), ("docProps/core.xml", CORE)]:
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        for name, _, data in extra_parts:
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        if with_custom:
            z.writestr(zipfile.ZipInfo("docProps/custom.xml", (2024, 1, 1, 0, 0, 0)), CUSTOM, zipfile.ZIP_DEFLATED)

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOC = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>这是一段由模型生成的示例文字。This is generated sample text.</w:t></w:r></w:p></w:body></w:document>'
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
WB = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{S}" xmlns:r="{R}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
WB_RELS = RELS_HEAD + '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
SHEET = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{S}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>generated</t></is></c><c r="B1"><v>42</v></c></row></sheetData></worksheet>'
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
PRES = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<p:presentation xmlns:p="{P}" xmlns:r="{R}" xmlns:a="{A}"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>'
PRES_RELS = RELS_HEAD + '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/></Relationships>'
SLIDE = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<p:sld xmlns:p="{P}" xmlns:a="{A}" xmlns:r="{R}"><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/></p:spTree></p:cSld></p:sld>'

pdf_classic("document.pdf")
pdf_xref_stream("document-xref-stream.pdf")
ooxml("document.docx", "word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", DOC, [])
ooxml("document-custom.docx", "word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", DOC, [], with_custom=True)
ooxml("sheet.xlsx", "xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", WB,
      [("xl/_rels/workbook.xml.rels", "application/vnd.openxmlformats-package.relationships+xml", WB_RELS),
       ("xl/worksheets/sheet1.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml", SHEET)])
ooxml("slides.pptx", "ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml", PRES,
      [("ppt/_rels/presentation.xml.rels", "application/vnd.openxmlformats-package.relationships+xml", PRES_RELS),
       ("ppt/slides/slide1.xml", "application/vnd.openxmlformats-officedocument.presentationml.slide+xml", SLIDE)])

open("text.md", "w", encoding="utf-8").write(
    "# 生成的示例\n\n这是一段由模型生成的 Markdown 文本。\n\n- item one\n- item two\n")
open("text-frontmatter.md", "w", encoding="utf-8").write(
    "---\ntitle: Sample with front matter\ntags: [demo, sample]\n---\n\n# Heading\n\nBody text.\n")
open("text.txt", "w", encoding="utf-8").write("这是一段由模型生成的纯文本。\nThis is generated plain text.\n")
