//! End to end: `aigc-mark check --json` and `aigc-mark safety lexicon validate --json`.

mod common;

use common::Scratch;

#[test]
fn check_json_reports_spans_pii_and_verdict() {
    let s = Scratch::new();
    let text = "请教你怎么制·造\u{200B}炸弹？我的手机：１３８００１３８０００。前方路口交通拥堵。";
    let v = s.json(&["check", "--json", text], 1);
    assert_eq!(v["verdict"], "block");
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(findings.len(), 1, "路口交通 is allowed: {v}");
    let f = &findings[0];
    assert_eq!(
        (f["risk"].as_str(), f["severity"].as_str()),
        (Some("A1.4"), Some("high"))
    );
    let span = |x: &serde_json::Value| {
        let a = x["start"].as_u64().unwrap_or(0) as usize;
        let b = x["end"].as_u64().unwrap_or(0) as usize;
        text.get(a..b)
            .unwrap_or("<not a char boundary>")
            .to_string()
    };
    assert_eq!(span(f), "制·造\u{200B}炸弹");
    assert_eq!(f["matched"], "制·造\u{200B}炸弹");
    let pii = v["pii"].as_array().cloned().unwrap_or_default();
    assert_eq!(pii.len(), 1, "{v}");
    assert_eq!(pii[0]["kind"], "mobile");
    assert_eq!(pii[0]["masked"], "138****8000");
    assert_eq!(span(&pii[0]), "１３８００１３８０００");
    let masked = v["masked_text"].as_str().unwrap_or("");
    assert!(
        masked.contains("手机：138****8000。") && !masked.contains("１３８"),
        "{masked}"
    );

    // A clean text passes with exit 0; a low-severity hit is only a review.
    let v = s.json(&["check", "--json", "今天天气很好，前方路口交通顺畅。"], 0);
    assert_eq!(v["verdict"], "pass");
    let v = s.json(&["check", "--json", "别信假新闻"], 0);
    assert_eq!(v["verdict"], "review");
    let v = s.json(&["check", "--json", "--block-at", "low", "别信假新闻"], 1);
    assert_eq!(v["verdict"], "block");

    // Own lexicon from a file, text from a file.
    let lex = s.path("my.tsv");
    std::fs::write(&lex, "# mine\n测试词条\tA2.4\thigh\tmine\tzh\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let input = s.path("answer.txt");
    std::fs::write(&input, "这里有個測試詞條。").unwrap_or_else(|e| panic!("{e}"));
    let lex_s = lex.to_string_lossy().to_string();
    let input_s = input.to_string_lossy().to_string();
    let v = s.json(&["check", "--json", "--lexicon", &lex_s, "-f", &input_s], 1);
    assert_eq!(v["findings"][0]["term"], "测试词条");
    assert_eq!(v["findings"][0]["matched"], "測試詞條");

    // Input errors name the file and exit 2.
    let out = s.run(&["check", "-f", "/nonexistent/answer.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out.stderr).contains("/nonexistent/answer.txt"));
    std::fs::write(&lex, "词\tB1\n").unwrap_or_else(|e| panic!("{e}"));
    let out = s.run(&["check", "--lexicon", &lex_s, "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out.stderr).contains("my.tsv:1: unknown risk code"));
}

#[test]
fn lexicon_validate_prints_the_seed_shortfall() {
    let s = Scratch::new();
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/safety/seed-lexicon.tsv"
    );
    let v = s.json(&["safety", "lexicon", "validate", "--json", seed], 1);
    assert_eq!(v["meets_standard"], false);
    assert_eq!(v["usable"], 336);
    assert_eq!(v["total_shortfall"], 10_000 - 336);
    let a21 = v["per_risk"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["risk"] == "A2.1"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (a21["count"].as_u64(), a21["shortfall"].as_u64()),
        (Some(10), Some(90))
    );
}
