//! A minimal GGUF (version 3) reader of tensor shapes and writer of F32 tensors, enough to
//! build synthetic LoRA adapters for a real base model in tests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
const ALIGN: u64 = 32;
const T_UINT32: u32 = 4;
const T_FLOAT32: u32 = 6;
const T_STRING: u32 = 8;
const GGML_F32: u32 = 0;

/// A metadata value the writer can emit.
pub enum Meta {
    Str(String),
    F32(f32),
    U32(u32),
}

/// Reads the shapes (`ne`, innermost first) of every tensor in a GGUF file, and its string
/// metadata.
pub fn read_shapes(path: &Path) -> (BTreeMap<String, Vec<u64>>, BTreeMap<String, String>) {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, MAGIC, "{} is not GGUF", path.display());
    let version = u32_(&mut f);
    assert!(version >= 2, "GGUF version {version}");
    let n_tensors = u64_(&mut f);
    let n_kv = u64_(&mut f);
    let mut strings = BTreeMap::new();
    for _ in 0..n_kv {
        let key = string(&mut f);
        let ty = u32_(&mut f);
        if ty == T_STRING {
            strings.insert(key, string(&mut f));
        } else {
            skip_value(&mut f, ty);
        }
    }
    let mut shapes = BTreeMap::new();
    for _ in 0..n_tensors {
        let name = string(&mut f);
        let n_dims = u32_(&mut f);
        let dims = (0..n_dims).map(|_| u64_(&mut f)).collect();
        let _ty = u32_(&mut f);
        let _offset = u64_(&mut f);
        shapes.insert(name, dims);
    }
    (shapes, strings)
}

/// Writes a GGUF file with the given metadata and F32 tensors (`ne` innermost first, data
/// row-major in that order).
pub fn write(path: &Path, meta: &[(&str, Meta)], tensors: &[(String, Vec<u64>, Vec<f32>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        put_string(&mut out, k);
        match v {
            Meta::Str(s) => {
                out.extend_from_slice(&T_STRING.to_le_bytes());
                put_string(&mut out, s);
            }
            Meta::F32(x) => {
                out.extend_from_slice(&T_FLOAT32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Meta::U32(x) => {
                out.extend_from_slice(&T_UINT32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    let mut offset = 0u64;
    for (name, ne, data) in tensors {
        assert_eq!(
            ne.iter().product::<u64>() as usize,
            data.len(),
            "tensor {name}: shape and data disagree"
        );
        put_string(&mut out, name);
        out.extend_from_slice(&(ne.len() as u32).to_le_bytes());
        for d in ne {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&GGML_F32.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + 4 * data.len() as u64).div_ceil(ALIGN) * ALIGN;
    }
    pad(&mut out);
    for (_, _, data) in tensors {
        for x in data {
            out.extend_from_slice(&x.to_le_bytes());
        }
        pad(&mut out);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

fn pad(out: &mut Vec<u8>) {
    while out.len() as u64 % ALIGN != 0 {
        out.push(0);
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn u32_(f: &mut impl Read) -> u32 {
    let mut b = [0u8; 4];
    f.read_exact(&mut b).unwrap();
    u32::from_le_bytes(b)
}

fn u64_(f: &mut impl Read) -> u64 {
    let mut b = [0u8; 8];
    f.read_exact(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn string(f: &mut impl Read) -> String {
    let n = u64_(f) as usize;
    let mut b = vec![0u8; n];
    f.read_exact(&mut b).unwrap();
    String::from_utf8_lossy(&b).into_owned()
}

fn skip(f: &mut impl Read, n: u64) {
    std::io::copy(&mut f.take(n), &mut std::io::sink()).unwrap();
}

fn skip_value(f: &mut impl Read, ty: u32) {
    match ty {
        0 | 1 | 7 => skip(f, 1),
        2 | 3 => skip(f, 2),
        4..=6 => skip(f, 4),
        10..=12 => skip(f, 8),
        T_STRING => {
            string(f);
        }
        9 => {
            let inner = u32_(f);
            let n = u64_(f);
            for _ in 0..n {
                skip_value(f, inner);
            }
        }
        other => panic!("unknown GGUF value type {other}"),
    }
}

/// Writes a synthetic rank-`r` LoRA for the GGUF model `base`: on the feed-forward down
/// projections of the last `layers` blocks, deterministic pseudo-random values of magnitude
/// `amp` drawn from `seed`.
#[allow(dead_code)]
pub fn write_lora(base: &Path, out: &Path, layers: usize, r: u64, amp: f32, seed: u32) {
    let (shapes, meta) = read_shapes(base);
    let arch = meta
        .get("general.architecture")
        .expect("architecture")
        .clone();
    let n_layer = shapes
        .keys()
        .filter(|k| k.ends_with(".ffn_down.weight"))
        .count();
    let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp
    };
    let mut tensors = Vec::new();
    for l in n_layer - layers..n_layer {
        let name = format!("blk.{l}.ffn_down.weight");
        let ne = &shapes[&name];
        let (n_in, n_out) = (ne[0], ne[1]);
        tensors.push((
            format!("{name}.lora_a"),
            vec![n_in, r],
            (0..n_in * r).map(|_| next()).collect(),
        ));
        tensors.push((
            format!("{name}.lora_b"),
            vec![r, n_out],
            (0..r * n_out).map(|_| next()).collect(),
        ));
    }
    write(
        out,
        &[
            ("general.architecture", Meta::Str(arch)),
            ("general.type", Meta::Str("adapter".into())),
            ("adapter.type", Meta::Str("lora".into())),
            ("adapter.lora.alpha", Meta::F32(r as f32)),
            ("general.alignment", Meta::U32(32)),
        ],
        &tensors,
    );
}
