import { describe, expect, it } from 'vitest';
import { CsvRecordAssembler, splitCsvRecord } from './csv.js';

describe('splitCsvRecord', () => {
  it.each([
    ['a,b,c', ['a', 'b', 'c']],
    ['a,,c', ['a', '', 'c']],
    ['', ['']],
    [',', ['', '']],
    ['"a,b",c', ['a,b', 'c']],
    ['"say ""hi""",x', ['say "hi"', 'x']],
    ['x,"",y', ['x', '', 'y']],
    ['x,"end"', ['x', 'end']],
    ['"a"b,c', ['ab', 'c']],
  ])('%j', (text, fields) => {
    expect(splitCsvRecord(text)).toEqual(fields);
  });

  it('reports an open quote as an unfinished record', () => {
    expect(splitCsvRecord('a,"multi')).toBeNull();
    expect(splitCsvRecord('"never closed ""')).toBeNull();
  });
});

describe('CsvRecordAssembler', () => {
  it('joins a quoted field across lines and keeps the starting line number', () => {
    const assembler = new CsvRecordAssembler();
    expect(assembler.push('1,"first', 4)).toBeNull();
    expect(assembler.push('second",x', 5)).toEqual({ fields: ['1', 'first\nsecond', 'x'], line: 4 });
    expect(assembler.push('2,plain,y', 6)).toEqual({ fields: ['2', 'plain', 'y'], line: 6 });
    expect(assembler.unterminatedLine()).toBeNull();
    assembler.push('3,"open', 7);
    expect(assembler.unterminatedLine()).toBe(7);
  });
});
