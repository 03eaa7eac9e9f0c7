// Where a streaming markdown text can be cut so that everything before the cut is
// complete blocks: after a blank line outside a fenced code block, when the next line
// has started, is not indented (it could continue a list item) and is not a list item.
// Complete blocks are rendered once and appended; only the tail is redrawn per frame.

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const LIST_ITEM = /^(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)/;

// After a blank line, a list item may belong to the list above (a "loose" list): cutting
// there would draw two lists until the final render joins them. Only a line that is not
// a list item (or the end of the answer) closes a list.
function startsListItem(text, at) {
  const end = text.indexOf("\n", at);
  const line = text.slice(at, end === -1 ? undefined : end);
  // An unfinished first line ("1" or "-") might still become a list marker.
  if (end === -1 && /^(?:[-*+]|\d{1,9}[.)]?)$/.test(line)) return true;
  return LIST_ITEM.test(line);
}

/**
 * The largest index in [from, text.length] that ends a complete block, given that
 * `text.slice(0, from)` itself ends with complete blocks (outside any fence).
 */
export function blockBoundary(text, from) {
  let fence = null;
  let boundary = from;
  let pos = from;
  for (;;) {
    const nl = text.indexOf("\n", pos);
    if (nl === -1) break;
    const line = text.slice(pos, nl);
    const match = line.match(FENCE);
    if (match) {
      if (!fence) fence = match[1];
      else if (match[1][0] === fence[0] && match[1].length >= fence.length && /^ {0,3}[`~]+\s*$/.test(line)) fence = null;
    } else if (!fence && line.trim() === "" && pos > from) {
      const next = text[nl + 1];
      if (next !== undefined && next !== " " && next !== "\t" && next !== "\n" && !startsListItem(text, nl + 1)) {
        boundary = nl + 1;
      }
    }
    pos = nl + 1;
  }
  return boundary;
}
