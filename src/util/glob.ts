// Shell-style globs for paths: `*` within one segment, `**` across segments, `?` one character.
// A pattern without a wildcard also matches everything below it (a directory prefix).
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}${/[*?]/.test(glob) ? '' : '(/.*)?'}$`);
}
