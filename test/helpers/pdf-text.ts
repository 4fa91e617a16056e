import { inflateSync } from 'node:zlib';

/**
 * The text drawn on each page of a PDF written by pdfkit: its page content streams, in order, inflated,
 * the strings of their TJ operators decoded (pdfkit writes text as hex strings in TJ arrays).
 */
export function pdfPageTexts(pdf: Buffer): string[] {
  const texts: string[] = [];
  const raw = pdf.toString('latin1');
  const streams = /\/Filter \/FlateDecode[^>]*>>\s*stream\r?\n/g;
  for (let match = streams.exec(raw); match; match = streams.exec(raw)) {
    const start = match.index + match[0].length;
    const content = inflateSync(pdf.subarray(start, raw.indexOf('endstream', start))).toString('latin1');
    const strings = [...content.matchAll(/\[(.*?)\] TJ/g)].map(([, array]) =>
      [...array!.matchAll(/<([0-9a-f]*)>/g)].map(([, hex]) => Buffer.from(hex!, 'hex').toString('latin1')).join(''),
    );
    texts.push(strings.join('\n'));
  }
  return texts;
}

/** The number of page objects in a PDF. */
export function pdfPageCount(pdf: Buffer): number {
  return (pdf.toString('latin1').match(/\/Type \/Page\b(?!s)/g) ?? []).length;
}
